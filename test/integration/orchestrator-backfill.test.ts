/**
 * `diamond backfill`: a deployed stateless job stops after its batch, runs its transform over
 * the archived history since a time (Parquet the archiver wrote), then its stream goes on from
 * where that history ends. Real Kafka, registry, Redis, Spark and the history archiver; serial.
 *
 * The oracle is per input record, on feedback.raw: after the backfill starts, every record
 * with event_time since the time is carried by exactly one message of the new launch (the
 * backfill or the stream, never both, never neither), records older than the time by none,
 * and each record always gets the same feedback id (so the stream's rows overwrite, never
 * duplicate). Records are produced while the backfill runs, so some arrive after the boundary.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProcesses, signalAll } from '../../shared/process-group.ts';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { backfillUsecase, deployUsecase } from '../../infra/orchestrator/control.ts';
import { archivedBoundary, recordsCheckpointOf } from '../../infra/orchestrator/history-boundary.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { readToEnd, testKafka, until } from '../support/env.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';

const DAY = 86_400_000;
const kafka = testKafka();
const work = mkdtempSync(join(tmpdir(), 'diamond-backfill-test-'));
const historyDir = join(work, 'history');
const archiveDir = join(work, 'archive');
let orchestrator: TestOrchestrator | undefined;

test.after.always(async () => {
  await orchestrator?.teardown();
  const left = findProcesses(new RegExp(`${archiveDir}/ha-`));
  signalAll(left.map((p) => p.pgid), left.map((p) => p.pid), 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});


const sum = (offsets: Record<string, number>): number => Object.values(offsets).reduce((total, offset) => total + offset, 0);

interface LifecycleMessage { event: string; at: string; since?: string; offsets?: Record<string, number>; rowsIn?: number; rowsOut?: number }

test('backfill: the history since a time through the use case, then the stream from where the history ends; each record once, the same feedback id', async (t) => {
  const o = await startTestOrchestrator('backfill', {
    DIAMOND_HISTORY_ARCHIVE: '1', DIAMOND_HISTORY_DIR: historyDir, DIAMOND_HISTORY_TRIGGER: '1s', DIAMOND_HISTORY_RETENTION: '7d',
  }, { historyArchiveDir: archiveDir });
  orchestrator = o;
  const registry = createRegistry(o.config);
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const source = { recordsCheckpoint: recordsCheckpointOf(archiveDir), inputTopic: o.options.topics.input };
  const now = Date.now();
  // data_quality gives one finding per record with a negative amount.
  const records = (name: string, count: number, eventTime: number): ReturnType<typeof customerRecord>[] => Array.from({ length: count }, (_, i) =>
    customerRecord(`${name}-${i}`, `c-${i % 3}`, { amount: -(i + 1), event_time: eventTime, ingested_at: now }));
  const before = records('before', 3, now - 3 * DAY); // older than `since`: never backfilled
  const history = records('history', 6, now - DAY);
  await o.produce([...before, ...history]);
  const since = new Date(now - 2 * DAY).toISOString();

  await t.throwsAsync(backfillUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', since }, source, o.options.jobPrefix), { message: /not deployed/ });
  // The stream starts at the end, so only the backfill can give the history's feedback.
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality'), settings: { startingOffsets: 'latest' } }, o.options.jobPrefix);
  await o.waitForJob(jobId, (r) => r.state === 'running', 180_000);
  await t.throwsAsync(backfillUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', since: 'last week' }, source, o.options.jobPrefix), { message: /not a time/ });
  await until('the archive holding the first records', () => {
    const boundary = archivedBoundary(source.recordsCheckpoint, source.inputTopic);
    return boundary && sum(boundary.offsets) >= before.length + history.length ? boundary : null;
  }, 120_000);

  const live = records('live', 4, now);
  await o.produce(live);
  const requested = await backfillUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', since }, source, o.options.jobPrefix);
  t.true(sum(requested.offsets) >= before.length + history.length, 'the answer names where the archive ends now');
  // In flight while the job stops, backfills and starts its stream: before or after the boundary.
  const during = records('during', 5, now);
  await o.produce(during.slice(0, 2));
  const backfilling = await until('the backfilling event', async () => {
    const events = await lifecycle();
    return events.find((e) => e.event === 'backfilling') ?? null;
  }, 120_000);
  await o.produce(during.slice(2));
  const backfilled = await until('the backfilled event', async () => (await lifecycle()).find((e) => e.event === 'backfilled') ?? null, 300_000);
  const after = records('after', 3, now);
  await o.produce(after);

  // Caught up: the group at the input's end, everything after the boundary streamed.
  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  await until('the job caught up', async () => (JSON.stringify(await readJobOffsets(o.admin, jobId, o.options.topics.input)) === JSON.stringify(ends) ? true : null), 120_000);
  const boundary = backfilling.offsets ?? {};
  t.true(sum(boundary) >= before.length + history.length, `the stream started where the archive ended: ${JSON.stringify(boundary)}`);
  t.is(backfilled.since, since);
  t.is(backfilled.rowsIn, sum(boundary) - before.length, 'the backfill read every archived record up to the boundary with event_time since the time, and no other');

  const feedback = await Promise.all((await readToEnd(kafka, o.options.topics.output)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  const restartedAt = Date.parse(backfilling.at);
  const byRecord = new Map<string, { ids: Set<string>; newLaunch: number }>();
  for (const row of feedback) {
    const record = row.record_ids.join(',');
    const entry = byRecord.get(record) ?? { ids: new Set<string>(), newLaunch: 0 };
    entry.ids.add(row.feedback_id);
    if (Number(new Date(row.produced_at)) >= restartedAt) entry.newLaunch += 1;
    byRecord.set(record, entry);
  }
  for (const record of before) t.false(byRecord.has(record.record_id), `${record.record_id} is older than the backfill's time: no feedback`);
  const expected = [...history, ...live, ...during, ...after].map((r) => r.record_id);
  const counts = Object.fromEntries(expected.map((id) => [id, byRecord.get(id)?.newLaunch ?? 0]));
  t.deepEqual(counts, Object.fromEntries(expected.map((id) => [id, 1])), 'after the restart, each record once: by the backfill or by the stream, never both, never neither');
  for (const id of expected) t.is(byRecord.get(id)?.ids.size, 1, `${id}: one feedback id, however often it was written`);
  t.is(backfilled.rowsOut, backfilled.rowsIn, 'one finding per record it read (every amount is negative)');

  async function lifecycle(): Promise<LifecycleMessage[]> {
    return (await readToEnd(kafka, o.options.topics.events)).map((m) => JSON.parse(m.value!.toString()) as LifecycleMessage).filter((e) => e.event.startsWith('backfill'));
  }
});
