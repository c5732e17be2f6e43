/**
 * `diamond replay`: the job's group moves back to the offsets at the given time and the job
 * reprocesses from there — exactly the records produced since, nothing earlier; a stateful
 * job's checkpoint is dropped, so its windows are rebuilt from the replayed input and the
 * same feedback comes out again, once; and late progress reports (of a launch no longer
 * live, or stamped before the replay) do not move the replayed group forward again.
 * Real Kafka, Redis, Spark; serial.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../shared/logger.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createRedis } from '../../shared/redis.ts';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { deployUsecase, replayUsecase } from '../../infra/orchestrator/control.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { ProgressIngest } from '../../infra/orchestrator/progress-ingest.ts';
import { newProgressKey, signProgress } from '../../infra/orchestrator/progress-signature.ts';
import { jobIdFor, type JobProcess } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { config, consumeAll, consumeUntil, readToEnd, testKafka, uniqueName } from '../support/env.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the job's group has committed the input topic's end offsets (its last batch reported). */
async function waitCaughtUp(o: TestOrchestrator, jobId: string, timeoutMs = 60_000): Promise<Record<string, number>> {
  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  const deadline = Date.now() + timeoutMs;
  let committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
  while (JSON.stringify(committed) !== JSON.stringify(ends)) {
    if (Date.now() > deadline) throw new Error(`${jobId} committed ${JSON.stringify(committed)}, not the input's end ${JSON.stringify(ends)}, within ${timeoutMs} ms`);
    await sleep(300);
    committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
  }
  return committed;
}

test.serial('replay reprocesses exactly the records since the given time', async (t) => {
  const o = await startTestOrchestrator('orch-replay');
  t.teardown(() => o.teardown());
  const registry = createRegistry(o.config);
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const ids = async (count: number): Promise<string[]> => {
    const messages = await consumeAll(kafka, o.options.topics.output, count, 120_000);
    return (await Promise.all(messages.map(async (m) => ((await registry.decode(m.value!)) as Feedback).record_ids.join(',')))).sort();
  };

  await o.produce([1, 2, 3].map((i) => customerRecord(`old-${i}`, `c${i}`, { amount: -i })));
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix);
  const first = await o.waitForJob(jobId, (r) => r.state === 'running');
  await ids(3);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const since = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 500));
  await o.produce([4, 5].map((i) => customerRecord(`new-${i}`, `c${i}`, { amount: -i })));
  t.deepEqual(await ids(5), ['new-4', 'new-5', 'old-1', 'old-2', 'old-3']);

  await t.throwsAsync(replayUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'B', since }, o.options.jobPrefix), { message: /not deployed/ });
  await t.throwsAsync(replayUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', since: 'yesterday' }, o.options.jobPrefix), { message: /not a time/ });
  await replayUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', since }, o.options.jobPrefix);

  const replayed = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current !== null && r.current.groupPid !== first.current!.groupPid && r.retiring.length === 0);
  t.is(replayed.restarts, 0, 'a replay is not a crash');
  t.deepEqual(await ids(7), ['new-4', 'new-4', 'new-5', 'new-5', 'old-1', 'old-2', 'old-3'], 'the records since the time, again; nothing earlier');
  await t.throwsAsync(consumeUntil(kafka, o.options.topics.output, (m) => m.length > 7, 5000), undefined, 'nothing more');

  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  const deadline = Date.now() + 30_000;
  let committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
  while (JSON.stringify(committed) !== JSON.stringify(ends) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
  }
  t.deepEqual(committed, ends, 'the group is at the end again after the replay');
  const events = (await consumeUntil(kafka, o.options.topics.events, (m) => m.some((e) => e.value!.toString().includes('"replayed"')), 10_000)).map((m) => JSON.parse(m.value!.toString()) as { event: string; since?: string });
  t.like(events.find((e) => e.event === 'replayed'), { since });

  // diamond deploy --from: the deployed job restarts at the offsets of that time, nothing earlier.
  const folder = join(o.config.projectRoot, 'usecases', 'data_quality');
  await t.throwsAsync(deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder, from: 'last week' }, o.options.jobPrefix), { message: /from "last week" is not a time/ });
  const before = (await o.waitForJob(jobId, (r) => r.state === 'running')).current!.groupPid;
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder, from: since }, o.options.jobPrefix);
  await o.waitForJob(jobId, (r) => r.state === 'running' && r.current !== null && r.current.groupPid !== before && r.retiring.length === 0);
  t.deepEqual(await ids(9), ['new-4', 'new-4', 'new-4', 'new-5', 'new-5', 'new-5', 'old-1', 'old-2', 'old-3'], 'deploy --from reprocessed the records since, and none before');
  await waitCaughtUp(o, jobId);
  t.is((await readToEnd(kafka, o.options.topics.output)).length, 9, 'nothing more');
});

test.serial('replay of a stateful job: its checkpoint is dropped, the windows are rebuilt from the replayed input, and the same feedback comes out again, once', async (t) => {
  const o = await startTestOrchestrator('orch-replay-stateful');
  t.teardown(() => o.teardown());
  const registry = createRegistry(o.config);
  const jobId = jobIdFor('spending_spike', 'A', o.options.jobPrefix);
  const since = new Date(Date.now() - 1000).toISOString(); // before every record (Kafka record time)
  await o.produce([
    customerRecord('s-1', 'acme', { amount: 1500, event_time: Date.UTC(2026, 10, 1, 10, 10) }),
    customerRecord('s-2', 'globex', { amount: 20, event_time: Date.UTC(2026, 10, 1, 10, 12) }),
    // A later event time moves the watermark past the windows above, so they are emitted.
    customerRecord('s-3', 'initech', { amount: 1, event_time: Date.UTC(2026, 10, 1, 13, 0) }),
  ]);
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'spending_spike', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'spending_spike') }, o.options.jobPrefix);
  const first = await o.waitForJob(jobId, (r) => r.state === 'running');
  const decode = async (messages: { value: Buffer | null }[]): Promise<Feedback[]> => Promise.all(messages.map(async (m) => (await registry.decode(m.value!)) as Feedback));
  const before = await decode(await consumeAll(kafka, o.options.topics.output, 2, 180_000));
  const windows = (rows: Feedback[]): string[] => rows.map((f) => `${f.customer_id} ${f.details['window_start'] ?? '?'} ${f.feedback_id}`).sort();
  t.deepEqual(before.map((f) => f.customer_id), ['acme', 'acme']);
  await waitCaughtUp(o, jobId);
  const checkpoint = join(o.options.checkpointsDir, jobId);
  t.true(existsSync(checkpoint), `the stateful job keeps its checkpoint in ${checkpoint}`);

  // Had the checkpoint survived, Spark would resume from its offsets (the end) and emit nothing.
  await replayUsecase(o.reconciler.store, null, { usecase: 'spending_spike', variant: 'A', since }, o.options.jobPrefix);
  await o.waitForJob(jobId, (r) => r.state === 'running' && r.current !== null && r.current.groupPid !== first.current!.groupPid && r.retiring.length === 0, 180_000);
  const all = await decode(await consumeAll(kafka, o.options.topics.output, 4, 180_000).catch((error: Error) => {
    throw new Error(`the replayed stateful job did not emit its windows again (a checkpoint that survived the replay resumes at the end): ${error.message}`);
  }));
  t.deepEqual(windows(all.slice(2)), windows(before), 'the same windows, with the same ids, rebuilt from the replayed records');
  await waitCaughtUp(o, jobId);
  t.is((await readToEnd(kafka, o.options.topics.output)).length, 4, 'each window once per run: nothing more once the group is at the end');
  const events = (await consumeUntil(kafka, o.options.topics.events, (m) => m.some((e) => e.value!.toString().includes('"replayed"')), 10_000)).map((m) => JSON.parse(m.value!.toString()) as { event: string; offsets?: Record<string, number> });
  t.deepEqual(events.find((e) => e.event === 'replayed')?.offsets, { 0: 0, 1: 0 }, 'moved back to the first records');
});

test.serial('late progress reports cannot move a replayed group: not from a launch that is no longer live, nor stamped before the replay', async (t) => {
  // The orchestrator's own ingest (progress-ingest.ts) against real Kafka and Redis, fed the
  // reports a stopped launch could still have in flight when a replay moved the group back.
  const input = uniqueName('fence-records');
  const admin = kafka.admin();
  await admin.connect();
  const keyPrefix = `${uniqueName('test-fence')}:`;
  const redis = createRedis(config, { keyPrefix });
  await redis.connect();
  t.teardown(async () => {
    redis.disconnect();
    const plain = createRedis(config); // KEYS does not apply the prefix; DEL would, so use an unprefixed client
    await plain.connect();
    const keys = await plain.keys(`${keyPrefix}*`);
    if (keys.length > 0) await plain.del(...keys);
    plain.disconnect();
    await admin.disconnect();
  });
  await ensureTopics(admin, [{ topic: input, partitions: 2 }]);
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: input, acks: -1, messages: [0, 1].flatMap((partition) => [1, 2, 3, 4].map((i) => ({ partition, value: `m${i}` }))) });
  await producer.disconnect();

  const jobPrefix = `${uniqueName('fence')}.`;
  const jobId = jobIdFor('data_quality', 'A', jobPrefix);
  const store = new DeploymentStore(redis);
  const ingest = new ProgressIngest(kafka, admin, store, { jobPrefix, progressGroup: uniqueName('fence-orchestrator'), topics: { input, output: 'unused', rejected: 'unused', progress: 'unused', events: 'unused' } }, createLogger(config, { fd: 2 }));
  const oldKey = newProgressKey();
  const newKey = newProgressKey();
  // The state right after a replay: the group moved back to offset 1, the fence set, the old launch gone, the new one live.
  await admin.setOffsets({ groupId: jobId, topic: input, partitions: [{ partition: 0, offset: '1' }, { partition: 1, offset: '1' }] });
  const fence = Date.now();
  await store.setOffsetFence(jobId, fence);
  const launch: JobProcess = { groupPid: 2 ** 22 + 1, marker: 'none', launchId: 'new', driverPidFile: '', exitFile: '', logFile: '', version: 'v1', startedAt: fence, progressKey: newKey };
  await store.putJob({ jobId, usecase: 'data_quality', variant: 'A', state: 'starting', generation: 1, current: launch, next: null, retiring: [], restarts: 0, crashes: [], nextStartAt: null, lastError: null, lastLogFile: null, updatedAt: fence });

  const report = (key: string, at: number, end: Record<string, number>): string => signProgress(JSON.stringify({
    event: 'progress', job: jobId, usecase: 'data_quality', variant: 'A', version: 'v1', at: new Date(at).toISOString(),
    batch_id: 7, start_offsets: {}, end_offsets: end, rows_in: 1, rows_out: 0, rows_rejected: 0,
  }), key);
  const committed = (): Promise<Record<string, number>> => readJobOffsets(admin, jobId, input);
  const atReplay = { 0: 1, 1: 1 };

  await ingest.handle(report(oldKey, fence - 5000, { 0: 4, 1: 4 }));
  t.deepEqual(await committed(), atReplay, "the old launch's report of its last batch before the replay");
  await ingest.handle(report(oldKey, fence + 1000, { 0: 4, 1: 4 }));
  t.deepEqual(await committed(), atReplay, 'a report of the old launch stamped after the replay (its key is no longer live)');
  await ingest.handle(report(newKey, fence - 1000, { 0: 4, 1: 4 }));
  t.deepEqual(await committed(), atReplay, 'a report stamped before the replay, even with a live key');

  // The checks above can fail: a live launch's report after the replay does move the group (never backwards).
  await ingest.handle(report(newKey, fence + 1000, { 0: 3, 1: 2 }));
  t.deepEqual(await committed(), { 0: 3, 1: 2 });
  await ingest.handle(report(newKey, fence + 2000, { 0: 2, 1: 2 }));
  t.deepEqual(await committed(), { 0: 3, 1: 2 }, 'never backwards');
});
