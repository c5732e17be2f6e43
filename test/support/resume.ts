/**
 * Proof that a restarted job resumed instead of starting over, and that a fault hit with data
 * in flight. Both read what the job itself reported on the progress topic and what it wrote
 * on the output topic, read up to their end offsets (never "wait a while and see nothing").
 *
 *   const atKill = await inFlight(t, admin, jobId, inputTopic);   // asserts unread input
 *   …kill, restart, catch up…
 *   const runs = await progressRuns(kafka, progressTopic, jobId);
 *   assertResumedFrom(t, runs.at(-1)!, atKill.committed);
 */
import type { ExecutionContext } from 'ava';
import type { Admin, Kafka } from 'kafkajs';
import { parseProgressMessage, type ProgressMessage } from '../../shared/messages.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { readToEnd, sumOffsets } from './env.ts';

export interface OffsetsAt {
  readonly committed: Record<string, number>;
  readonly ends: Record<string, number>;
}

/**
 * Asserts, at the moment of a fault, that the job had unread input: its group's committed
 * offsets below the topic's end. Polls (the input may be momentarily all read) and fails with
 * both offsets after `timeoutMs`.
 */
export async function inFlight(t: ExecutionContext, admin: Admin, groupId: string, topic: string, timeoutMs = 60_000): Promise<OffsetsAt> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [committed, ends] = [await readJobOffsets(admin, groupId, topic), await topicEndOffsets(admin, topic)];
    if (sumOffsets(committed) > 0 && sumOffsets(committed) < sumOffsets(ends)) {
      t.log(`${groupId} had unread input at the fault: committed ${JSON.stringify(committed)}, end ${JSON.stringify(ends)}`);
      t.pass();
      return { committed, ends };
    }
    if (Date.now() > deadline) throw new Error(`${groupId} never had committed-but-unfinished input within ${timeoutMs} ms (committed ${JSON.stringify(committed)}, end ${JSON.stringify(ends)}): the fault would not hit data in flight`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One run of a job (from its `started` report to the next): its progress reports in order. */
export interface ProgressRun {
  readonly runId: string | undefined;
  readonly batches: readonly ProgressMessage[];
}

/** The job's runs as it reported them on the progress topic, read up to the topic's end. */
export async function progressRuns(kafka: Kafka, topic: string, jobId: string): Promise<ProgressRun[]> {
  const runs: { runId: string | undefined; batches: ProgressMessage[] }[] = [];
  for (const message of await readToEnd(kafka, topic)) {
    const parsed = parseProgressMessage(JSON.parse(message.value!.toString()) as unknown);
    if (!parsed.ok) throw new Error(`a message on ${topic} breaks progress.schema.json: ${parsed.field} ${parsed.problem}`);
    const report = parsed.message;
    if (report.job !== jobId) continue;
    if (report.event === 'started') runs.push({ runId: report.run_id, batches: [] });
    else if (report.event === 'progress') runs.at(-1)?.batches.push(report);
  }
  return runs;
}

/**
 * Where a run's first batch started, summed over partitions. Spark reports no start offset for
 * the first batch of a fresh query (a stateless job's); then it is the end minus the rows read.
 */
export function firstBatchStart(run: ProgressRun): { readonly partitions: Record<string, number> | null; readonly total: number } {
  const first = run.batches.find((b) => (b.rows_in ?? 0) > 0 || Object.keys(b.start_offsets ?? {}).length > 0);
  if (!first) throw new Error(`run ${run.runId ?? '?'} reported no batch`);
  const start = first.start_offsets ?? {};
  if (Object.keys(start).length > 0) return { partitions: start, total: sumOffsets(start) };
  return { partitions: null, total: sumOffsets(first.end_offsets ?? {}) - (first.rows_in ?? 0) };
}

/** The restarted run's first batch starts at or after the offsets committed when the fault hit. */
export function assertResumedFrom(t: ExecutionContext, run: ProgressRun, committedAtFault: Record<string, number>): void {
  const start = firstBatchStart(run);
  const what = `first batch after the restart starts at ${JSON.stringify(start.partitions ?? start.total)}, committed at the fault ${JSON.stringify(committedAtFault)}`;
  t.log(what);
  if (start.partitions) {
    const behind = Object.entries(committedAtFault).filter(([p, offset]) => offset >= 0 && (start.partitions![p] ?? -1) < offset);
    t.deepEqual(behind, [], `resumed, not started over: ${what}`);
  } else {
    t.true(start.total >= sumOffsets(committedAtFault), `resumed, not started over: ${what}`);
  }
}

/** Messages per key (e.g. feedback_id) that appear more than once: id → count. */
export function repeated(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return new Map([...counts].filter(([, n]) => n > 1));
}
