/**
 * What the late-records e2e adds to test/support/e2e.ts: a wait until jobs have committed
 * the whole records topic (so their watermark has moved before the next run is sent), and a
 * settle over several runs, whose expected rows are each run's (infra/dataset/oracle.ts,
 * every earlier run replayed so the watermark and open windows are where the job left them).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import { createRegistry } from '../../shared/registry.ts';
import type { CustomerRecord } from '../../shared/schemas.ts';
import { SPENDING_WEIGHTS, type Dataset, type InputRecord } from '../../infra/dataset/generator.ts';
import { checkManifestParams } from '../../infra/dataset/manifest-params.ts';
import { expectedFeedback, inputOf, type SpendingOutcome } from '../../infra/dataset/oracle.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { diff, readFeedbackRows, type Diamond } from './e2e.ts';
import { readToEnd } from './env.ts';

/** Waits until every job's committed offsets equal the records topic's end offsets (as they are now). */
export async function waitForCommitted(d: Diamond, jobs: readonly string[], timeoutMs = 240_000): Promise<Record<string, number>> {
  const ends = await topicEndOffsets(d.admin, d.options.topics.input);
  const deadline = Date.now() + timeoutMs;
  let behind: string[] = [];
  // Checked at least once, whatever the timeout.
  for (;;) {
    behind = [];
    for (const id of jobs) {
      const committed = await readJobOffsets(d.admin, id, d.options.topics.input);
      if (Object.entries(ends).some(([p, end]) => end > 0 && (committed[p] ?? -1) < end)) behind.push(`${id} at ${JSON.stringify(committed)}`);
    }
    if (behind.length === 0) return ends;
    if (Date.now() >= deadline) break;
    await sleep(500);
  }
  throw new Error(`jobs did not commit the records topic's end ${JSON.stringify(ends)} in ${timeoutMs} ms: ${behind.join('; ')}`);
}

export interface RunsSettled {
  /** The spending outcome of each run (late purchases, watermark before and after). */
  readonly spending: readonly SpendingOutcome[];
  readonly landed: readonly (readonly InputRecord[])[];
}

/**
 * Reads every landed record, splits it into `runs` by record id prefix, and polls Cassandra
 * until both tables hold exactly the rows the oracle expects of all runs together (each
 * run's rows for the windows its watermark closed) and the jobs caught up, or fails after
 * `timeoutMs` (a time window: the jobs and the writer must finish by then) with the diff.
 */
export async function settleRuns(t: ExecutionContext, d: Diamond, runs: readonly Dataset[], jobs: readonly string[], timeoutMs = 300_000): Promise<RunsSettled> {
  const params = checkManifestParams(d.config.projectRoot);
  const registry = createRegistry(d.config);
  const messages = await readToEnd(d.kafka, d.options.topics.input, 120_000);
  const records = await Promise.all(messages.map(async (m) => inputOf((await registry.decode(m.value!)) as CustomerRecord)));
  // Longest tag first: a later run's tag extends the first's (`o` and `o-late`).
  const byTag = [...runs].map((run, index) => ({ run, index })).sort((a, b) => b.run.tag.length - a.run.tag.length);
  const landed: InputRecord[][] = runs.map(() => []);
  for (const record of records) {
    const owner = byTag.find(({ run }) => record.record_id.startsWith(`${run.tag}-`));
    if (!owner) throw new Error(`record ${record.record_id} belongs to no run`);
    landed[owner.index]!.push(record);
  }
  runs.forEach((run, i) => t.is(landed[i]!.length, run.accepted.size, `run ${run.tag}: every accepted record landed once`));
  const processedAt = Date.now();
  const outcomes = runs.map((_, i) => expectedFeedback(landed.slice(0, i + 1), params, { processedAt, weights: { spending_spike: SPENDING_WEIGHTS } }));
  const all = outcomes.flatMap((o) => o.all);
  const delivered = outcomes.flatMap((o) => o.delivered);
  const deadline = Date.now() + timeoutMs;
  let last = { customer: diff(delivered, []), variant: diff(all, []), behind: 'not checked' };
  let cleanSince: number | null = null;
  while (Date.now() < deadline) {
    const [customer, variant] = await Promise.all([readFeedbackRows(d.cassandra, d.keyspace, 'feedback_by_customer'), readFeedbackRows(d.cassandra, d.keyspace, 'feedback_by_variant')]);
    const behind = await waitForCommitted(d, jobs, 0).then(() => '', (error: Error) => error.message);
    last = { customer: diff(delivered, customer), variant: diff(all, variant), behind };
    const clean = [last.customer, last.variant].every((x) => x.missing.length + x.extra.length + x.duplicated.length + x.mismatched.length === 0) && behind === '';
    if (clean) {
      // Stable for a few seconds with every job caught up: nothing more is coming.
      if (cleanSince !== null && Date.now() - cleanSince >= 5_000) break;
      cleanSince ??= Date.now();
    } else {
      cleanSince = null;
    }
    await sleep(1_000);
  }
  for (const [table, x] of [['feedback_by_customer', last.customer], ['feedback_by_variant', last.variant]] as const) {
    t.deepEqual(x.missing.slice(0, 5), [], `${table}: no expected row missing (${x.missing.length})`);
    t.deepEqual(x.mismatched.slice(0, 5), [], `${table}: every row as computed (${x.mismatched.length} differ)`);
    t.deepEqual(x.extra.slice(0, 5), [], `${table}: no unexpected row (${x.extra.length})`);
    t.deepEqual(x.duplicated, [], `${table}: no feedback_id twice`);
  }
  t.is(last.behind, '', 'every job caught up with the records topic');
  return { spending: outcomes.map((o) => o.spending), landed };
}
