/**
 * The one oracle of the example use cases: what feedback a dataset's records must produce,
 * computed independently of the use cases' code — it never calls the Python, nor downstream's
 * assignVariant: it re-implements the documented rules (README, docs/DATA_SCIENTISTS.md, the
 * `params:` of each usecase.yaml, read by ./manifest-params.ts) and the documented contracts
 * around them, so a change of either side that breaks the contract fails the comparison
 * instead of being agreed with. Used by the demo (how many rows to wait for) and the e2e
 * suite (every row, field by field). Pure: no I/O.
 *
 * What it models:
 * - data_quality (stateless, variant A), one row per finding, key = the record id:
 *   missing_amount (a purchase, refund or payment without amount, warning), missing_currency
 *   (an amount without currency, warning), negative_amount (a purchase below 0, warning),
 *   amount_out_of_range (|amount| > max_amount, critical), future_timestamp (event time more
 *   than future_tolerance_minutes after processing, warning). A record that landed twice
 *   gives its rows once (same feedback_id).
 * - spending_spike (stateful): purchases with an amount, per customer, in every `window`
 *   sliding by `slide` (aligned to the epoch, as Spark's window()) that holds them; a
 *   purchase that landed twice counts once (the SDK drops a repeated (customer_id,
 *   record_id) within the watermark, and a copy behind the watermark is late anyway). A: spend > threshold.
 *   B: spend > threshold_b over at least min_purchases purchases. severity critical above
 *   3 × the variant's threshold, score = spend / threshold, event_time = the window's end,
 *   key = `customer|yyyy-MM-ddTHH:mm` of its start.
 * - the watermark: max purchase event time seen − `watermark`, advanced after each run (a
 *   run = records sent into the same job, none more than `watermark` behind a purchase
 *   sent before it in that run, so that within a run none is late whatever the micro-batch
 *   boundaries; the generator keeps to that); a window is emitted once its end ≤ the
 *   watermark; a purchase at or behind the watermark of earlier runs (a run sent after the
 *   job committed them) is dropped as late, and windows already emitted are not emitted again.
 * - feedback_id = sha256(usecase|variant|key|kind).
 * - A/B: bucket = first 4 bytes of sha256(usecase ‖ 0 ‖ customer_id) mod 10,000; weights cut
 *   consecutive slices in variant-name order; a use case without weights reaches every
 *   customer with every variant.
 */
import { createHash } from 'node:crypto';
import type { CustomerRecord } from '../../shared/schemas.ts';
import type { InputRecord } from './generator.ts';
import type { OracleParams } from './manifest-params.ts';

/** The fields of a feedback row the oracle knows (message and version are presentation). */
export interface ExpectedRow {
  readonly feedback_id: string;
  readonly customer_id: string;
  readonly usecase: string;
  readonly variant: string;
  readonly kind: string;
  readonly severity: string;
  readonly score: number | null;
  readonly event_time: number;
  readonly record_ids: readonly string[];
  /** spending_spike: the window (not a Feedback field; for reports). */
  readonly window?: { readonly start: number; readonly spend: number; readonly purchases: number };
}

const MONEY_TYPES = new Set(['purchase', 'refund', 'payment']);

export function feedbackId(usecase: string, variant: string, key: string, kind: string): string {
  return createHash('sha256').update(`${usecase}|${variant}|${key}|${kind}`).digest('hex');
}

/** The documented A/B assignment; null when the weights give the customer no variant. */
export function assignedVariant(usecase: string, customerId: string, weights: Readonly<Record<string, number>>): string | null {
  const bucket = createHash('sha256').update(usecase).update('\0').update(customerId).digest().readUInt32BE(0) % 10_000;
  const variants = Object.keys(weights).sort();
  const total = variants.reduce((sum, v) => sum + weights[v]!, 0);
  let cumulative = 0;
  for (const variant of variants) {
    const from = Math.round((cumulative / total) * 10_000);
    cumulative += weights[variant]!;
    if (bucket >= from && bucket < Math.round((cumulative / total) * 10_000)) return variant;
  }
  return null;
}

/** data_quality's five checks, one row per finding. `processedAt` is when the job sees the records. */
export function dataQualityRows(records: readonly InputRecord[], params: OracleParams['dataQuality'], processedAt: number, usecase = 'data_quality'): ExpectedRow[] {
  const rows: ExpectedRow[] = [];
  for (const r of new Map(records.map((record) => [record.record_id, record])).values()) {
    const findings: [string, string][] = [];
    if (r.amount === null && MONEY_TYPES.has(r.type)) findings.push(['missing_amount', 'warning']);
    if (r.amount !== null && r.currency === null) findings.push(['missing_currency', 'warning']);
    if (r.amount !== null && r.amount < 0 && r.type === 'purchase') findings.push(['negative_amount', 'warning']);
    if (r.amount !== null && Math.abs(r.amount) > params.maxAmount) findings.push(['amount_out_of_range', 'critical']);
    if (r.event_time > processedAt + params.futureToleranceMs) findings.push(['future_timestamp', 'warning']);
    for (const [kind, severity] of findings) {
      rows.push({ feedback_id: feedbackId(usecase, 'A', r.record_id, kind), customer_id: r.customer_id, usecase, variant: 'A', kind, severity, score: null, event_time: r.event_time, record_ids: [r.record_id] });
    }
  }
  return rows;
}

/** Spark's sliding windows holding time t: starts aligned to the slide, t in [start, start + window). */
export function windowStarts(time: number, params: Pick<OracleParams['spending'], 'windowMs' | 'slideMs'>): number[] {
  const last = time - (((time % params.slideMs) + params.slideMs) % params.slideMs);
  const starts: number[] = [];
  for (let start = last; start > time - params.windowMs; start -= params.slideMs) starts.push(start);
  return starts.reverse();
}

export interface SpendingOutcome {
  /** Rows of both variants, for the windows the last run emitted. */
  readonly rows: readonly ExpectedRow[];
  /** Purchases of the last run dropped as late (behind the watermark earlier runs left). */
  readonly latePurchases: number;
  /** The watermark before the last run, or null when it is the first. */
  readonly watermarkBefore: number | null;
  readonly watermarkAfter: number | null;
}

interface Window {
  readonly customerId: string;
  readonly start: number;
  spend: number;
  purchases: number;
  readonly recordIds: string[];
}

/**
 * spending_spike over several runs' records, each run sent in event-time order into the same
 * stateful job. Rows are those of windows emitted after the previous run, i.e. what the last
 * run adds (one run: every window the watermark closed).
 */
export function spendingRows(runs: readonly (readonly InputRecord[])[], params: OracleParams['spending']): SpendingOutcome {
  const windows = new Map<string, Window>();
  let watermark: number | null = null;
  let watermarkBefore: number | null = null;
  let latePurchases = 0;
  const seen = new Set<string>();
  for (const [index, records] of runs.entries()) {
    const last = index === runs.length - 1;
    if (last) watermarkBefore = watermark;
    let maxTime = -Infinity;
    for (const r of records) {
      if (r.type !== 'purchase' || r.amount === null) continue;
      // Spark drops rows at or behind the watermark of the batches before them.
      if (watermark !== null && r.event_time <= watermark) {
        if (last) latePurchases += 1;
        continue;
      }
      const id = `${r.customer_id}\0${r.record_id}`;
      if (seen.has(id)) continue; // landed twice: counted once
      seen.add(id);
      maxTime = Math.max(maxTime, r.event_time);
      for (const start of windowStarts(r.event_time, params)) {
        if (watermark !== null && start + params.windowMs <= watermark) continue; // already emitted and evicted
        const key = `${r.customer_id}|${start}`;
        const window = windows.get(key) ?? { customerId: r.customer_id, start, spend: 0, purchases: 0, recordIds: [] };
        window.spend += r.amount;
        window.purchases += 1;
        window.recordIds.push(r.record_id);
        windows.set(key, window);
      }
    }
    if (maxTime > -Infinity) watermark = Math.max(watermark ?? -Infinity, maxTime - params.watermarkMs);
  }
  const rows: ExpectedRow[] = [];
  for (const w of windows.values()) {
    const end = w.start + params.windowMs;
    if (watermark === null || end > watermark) continue; // still open
    if (watermarkBefore !== null && end <= watermarkBefore) continue; // emitted by an earlier run
    const key = `${w.customerId}|${new Date(w.start).toISOString().slice(0, 16)}`;
    const rules: [string, number, boolean][] = [
      ['A', params.threshold, w.spend > params.threshold],
      ['B', params.thresholdB, w.spend > params.thresholdB && w.purchases >= params.minPurchases],
    ];
    for (const [variant, threshold, fires] of rules) {
      if (!fires) continue;
      rows.push({
        feedback_id: feedbackId('spending_spike', variant, key, 'spending_spike'), customer_id: w.customerId, usecase: 'spending_spike', variant,
        kind: 'spending_spike', severity: w.spend > 3 * threshold ? 'critical' : 'warning', score: w.spend / threshold, event_time: end,
        record_ids: [...w.recordIds].sort(), window: { start: w.start, spend: w.spend, purchases: w.purchases },
      });
    }
  }
  rows.sort((a, b) => a.customer_id.localeCompare(b.customer_id) || a.event_time - b.event_time || a.variant.localeCompare(b.variant));
  return { rows, latePurchases, watermarkBefore, watermarkAfter: watermark };
}

export interface ExpectedOptions {
  /** When the data_quality job sees the records (its future_timestamp rule). */
  readonly processedAt: number;
  /** Copies of data_quality deployed under other names. */
  readonly copies?: readonly string[];
  /** Rollout weights per use case; a use case without them is delivered in every variant. */
  readonly weights?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export interface Expected {
  /** Every variant's rows for the last run (feedback_by_variant). */
  readonly all: readonly ExpectedRow[];
  /** What customers receive (feedback_by_customer): each use case filtered by its rollout. */
  readonly delivered: readonly ExpectedRow[];
  readonly spending: SpendingOutcome;
}

/**
 * The rows the last of `runs` must produce with data_quality (and its `copies`) and
 * spending_spike A and B. Earlier runs are earlier datasets sent into the same jobs (the
 * demo reruns), replayed so the spending watermark and open windows are where they left
 * them. Records as they landed on the normalized topic, duplicates included.
 */
export function expectedFeedback(runs: readonly (readonly InputRecord[])[], params: OracleParams, options: ExpectedOptions): Expected {
  const current = runs.at(-1);
  if (!current) throw new Error('expectedFeedback needs at least one run');
  const quality = ['data_quality', ...(options.copies ?? [])].flatMap((usecase) => dataQualityRows(current, params.dataQuality, options.processedAt, usecase));
  const spending = spendingRows(runs, params.spending);
  const all = [...quality, ...spending.rows];
  const delivered = all.filter((row) => {
    const weights = options.weights?.[row.usecase];
    return !weights || assignedVariant(row.usecase, row.customer_id, weights) === row.variant;
  });
  return { all, delivered, spending };
}

/** The fields the oracle knows, from a record decoded off the normalized topic. */
export function inputOf(record: CustomerRecord): InputRecord {
  return { record_id: record.record_id, customer_id: record.customer_id, event_time: record.event_time, type: record.type, amount: record.amount, currency: record.currency };
}
