/**
 * The orchestrator with real Kafka, Redis and Spark: deploy data_quality while records keep
 * arriving; kill -9 the job's process group with input still unread → the orchestrator sees
 * the crash (failed, restarted, restart counter 1 in Redis) and the new run's first batch
 * starts at or after the offsets committed when the kill hit (resumed, not started over).
 * On the output topic, read to its end: every record's feedback is there, records below the
 * committed offsets exactly once, and only records the killed run had in flight may repeat.
 * Two Spark starts; serial.
 */
import test from 'ava';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRegistry } from '../../shared/registry.ts';
import type { CustomerRecord, Feedback } from '../../shared/schemas.ts';
import { deployUsecase, jobStatuses } from '../../infra/orchestrator/control.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { readToEnd, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';
import { assertResumedFrom, inFlight, progressRuns, repeated } from '../support/resume.ts';

const kafka = testKafka();

async function waitForOffsets(o: TestOrchestrator, jobId: string, timeoutMs = 120_000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  let committed: Record<string, number> = {};
  while (Date.now() < deadline) {
    committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
    if (JSON.stringify(committed) === JSON.stringify(ends)) return committed;
    await sleep(300);
  }
  throw new Error(`committed ${JSON.stringify(committed)} never reached the end offsets ${JSON.stringify(ends)}`);
}

/** Produces 10 records every 200 ms until stopped; each gets one negative_amount feedback. */
function feed(o: TestOrchestrator): { sent: () => number; stop: () => Promise<void> } {
  let sent = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const batch: CustomerRecord[] = Array.from({ length: 10 }, (_, i) => customerRecord(`r-${sent + i}`, `c${(sent + i) % 7}`, { amount: -1 }));
      await o.produce(batch);
      sent += batch.length;
      await sleep(200);
    }
  })();
  return { sent: () => sent, stop: async () => { running = false; await loop; } };
}

async function waitForSparkUi(o: TestOrchestrator, jobId: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = (await jobStatuses(o.reconciler.store, o.admin, o.options.topics.input, o.options.jobPrefix)).find((s) => s.job === jobId);
    if (status?.sparkUi) return status.sparkUi;
    if (Date.now() > deadline) throw new Error(`${jobId} reported no Spark UI within 60 s`);
    await sleep(500);
  }
}

test.serial('deploy data_quality, kill -9 it with input in flight: restarted from the committed offsets, at most the in-flight records twice', async (t) => {
  const o = await startTestOrchestrator('orch-sup');
  t.teardown(() => o.teardown());
  const registry = createRegistry(o.config);
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const input = o.options.topics.input;

  const stream = feed(o);
  t.teardown(() => stream.stop());
  const deployment = await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality'), settings: { startingOffsets: 'earliest' } }, o.options.jobPrefix);
  t.regex(deployment.version, /^[0-9a-f]{12}$/);
  const running = await o.waitForJob(jobId, (r) => r.state === 'running');
  t.is(running.current?.version, deployment.version);
  // Its Spark UI (DIAMOND_SPARK_UI, on by default) is in the status and answers.
  const sparkUi = await waitForSparkUi(o, jobId);
  t.regex(sparkUi, /^http:\/\/127\.0\.0\.1:\d+$/);
  const apps = (await (await fetch(`${sparkUi}/api/v1/applications`)).json()) as { id: string }[];
  t.is(apps.length, 1, 'the job\'s own driver answers');

  // The fault hits with data in flight: records still arriving, and the group below the end.
  const atKill = await inFlight(t, o.admin, jobId, input, 120_000);
  const sentAtKill = stream.sent();
  const killed = running.current!;
  process.kill(-killed.groupPid, 'SIGKILL');
  await sleep(1_000);
  t.true(stream.sent() > sentAtKill, 'the stream was still sending when the job died');

  const restarted = await o.waitForJob(jobId, (r) => r.restarts === 1 && r.state === 'running' && r.current?.groupPid !== killed.groupPid);
  t.regex(restarted.lastError ?? '', /killed/);
  await sleep(2_000); // a little more input for the new run, then the end is fixed
  await stream.stop();
  await waitForOffsets(o, jobId);
  const log = readFileSync(restarted.current!.logFile, 'utf8');
  t.regex(log, /"starting_offsets": "\{/, 'the orchestrator handed the new run offsets, not a fallback');

  // What the job reported: the new run's first batch starts at or after the committed offsets.
  const runs = await progressRuns(kafka, o.options.topics.progress, jobId);
  t.is(runs.length, 2, 'two runs reported: the killed one and the restarted one');
  assertResumedFrom(t, runs.at(-1)!, atKill.committed);

  // What the job wrote, read to the output's end: each record's feedback, duplicates only in flight.
  const inputMessages = await readToEnd(kafka, input);
  const position = new Map<string, { partition: number; offset: number }>();
  for (const m of inputMessages) {
    const record = (await registry.decode(m.value!)) as CustomerRecord;
    position.set(record.record_id, { partition: m.partition, offset: Number(m.offset) });
  }
  t.is(position.size, stream.sent());
  const feedback = await Promise.all((await readToEnd(kafka, o.options.topics.output)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  const perRecord = feedback.map((f) => f.record_ids.join(','));
  t.deepEqual([...position.keys()].filter((id) => !perRecord.includes(id)).slice(0, 10), [], 'every record has its feedback');
  const twice = repeated(perRecord);
  const settledTwice = [...twice.keys()].filter((id) => {
    const at = position.get(id)!;
    return at.offset < (atKill.committed[String(at.partition)] ?? -1);
  });
  // At most the batch in flight: what the killed run read past the committed offsets.
  t.deepEqual(settledTwice.slice(0, 10), [], `no record below the offsets committed at the kill was processed again (${settledTwice.length})`);
  t.log(`${position.size} records, ${feedback.length} feedback messages, ${twice.size} records processed twice (in flight at the kill)`);

  // The effect of the fault, as the orchestrator announced it.
  const events = (await readToEnd(kafka, o.options.topics.events)).map((e) => (JSON.parse(e.value!.toString()) as { event: string; job: string }));
  const names = events.filter((e) => e.job === jobId).map((e) => e.event);
  t.deepEqual(names.slice(0, 2), ['starting', 'running']);
  t.true(names.indexOf('failed') > 1 && names.indexOf('restarted') > names.indexOf('failed'), `failed, then restarted: ${names.join(', ')}`);
});
