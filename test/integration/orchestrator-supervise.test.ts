/**
 * The orchestrator with real Kafka, Redis and Spark: deploy data_quality → feedback, and
 * the job's consumer group holds the input's end offsets; kill -9 the job's process group →
 * restarted from the committed offsets (restart counter 1 in Redis), no feedback missing
 * and none repeated. Two Spark starts; serial.
 */
import test from 'ava';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { consumeAll, consumeUntil, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();

async function waitForOffsets(o: TestOrchestrator, jobId: string, timeoutMs = 60_000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  let committed: Record<string, number> = {};
  while (Date.now() < deadline) {
    committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
    if (JSON.stringify(committed) === JSON.stringify(ends)) return committed;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`committed ${JSON.stringify(committed)} never reached the end offsets ${JSON.stringify(ends)}`);
}

test.serial('deploy data_quality, commit offsets to its group, restart it from them after kill -9', async (t) => {
  const o = await startTestOrchestrator('orch-sup');
  t.teardown(() => o.teardown());
  const registry = createRegistry(o.config);
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);

  await o.produce([1, 2, 3].map((i) => customerRecord(`before-${i}`, `c${i}`, { amount: -i })));
  const deployment = await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix);
  t.regex(deployment.version, /^[0-9a-f]{12}$/);

  const running = await o.waitForJob(jobId, (r) => r.state === 'running');
  t.is(running.current?.version, deployment.version);
  const first = await consumeAll(kafka, o.options.topics.output, 3, 120_000);
  t.is(first.length, 3);
  const committed = await waitForOffsets(o, jobId);
  t.is(Object.values(committed).reduce((a, b) => a + b, 0), 3, 'the group holds the input end offsets');

  // kill -9 the whole process group: the orchestrator sees a crash and restarts from the group.
  const killed = running.current!;
  process.kill(-killed.groupPid, 'SIGKILL');
  await o.produce([4, 5].map((i) => customerRecord(`after-${i}`, `c${i}`, { amount: -i })));
  const restarted = await o.waitForJob(jobId, (r) => r.restarts === 1 && r.state === 'running' && r.current?.groupPid !== killed.groupPid);
  t.regex(restarted.lastError ?? '', /killed/);
  const log = readFileSync(restarted.current!.logFile, 'utf8');
  t.true(log.includes(JSON.stringify(JSON.stringify({ [o.options.topics.input]: committed })).slice(1, -1)), 'started from the committed offsets');

  const all = await consumeAll(kafka, o.options.topics.output, 5, 120_000);
  const feedback = await Promise.all(all.map(async (m) => (await registry.decode(m.value!)) as Feedback));
  t.deepEqual(feedback.map((f) => f.record_ids.join(',')).sort(), ['after-4', 'after-5', 'before-1', 'before-2', 'before-3']);
  await waitForOffsets(o, jobId);
  await t.throwsAsync(consumeUntil(kafka, o.options.topics.output, (m) => m.length > 5, 5000), undefined, 'nothing processed twice');

  const events = await consumeUntil(kafka, o.options.topics.events, (m) => m.map((e) => (JSON.parse(e.value!.toString()) as { event: string }).event).includes('restarted'), 10_000);
  const names = events.map((e) => (JSON.parse(e.value!.toString()) as { event: string }).event);
  t.deepEqual(names.slice(0, 2), ['starting', 'running']);
  t.true(names.includes('failed'));
});
