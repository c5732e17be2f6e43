/**
 * The end-to-end tests' data and oracle: a seeded generator of source records (several
 * customers; normal, faulty-but-accepted and rejected ones; spend spikes so windows fire)
 * and an independent computation of the feedback rows they must produce.
 *
 * The oracle never calls the use cases' code: it re-implements their documented rules
 * (README, docs/DATA_SCIENTISTS.md, the `params:` of each usecase.yaml) and the documented
 * contracts around them (feedback_id = sha256(usecase|variant|key|kind); A/B bucket =
 * first 4 bytes of sha256(usecase ‖ 0 ‖ customer_id) mod 10,000, weights cut consecutive
 * slices in variant order). Importing downstream's assignVariant or the SDK would make the
 * test agree with whatever the code does; re-deriving them from the docs makes a change of
 * either side that breaks the contract fail here.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CustomerRecord } from '../../shared/schemas.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** usecases/data_quality/usecase.yaml `params:` and the rules of its description. */
export const DATA_QUALITY = { maxAmount: 1_000_000, futureToleranceMs: 5 * MINUTE, moneyTypes: ['purchase', 'refund', 'payment'] } as const;
/** usecases/spending_spike/usecase.yaml `params:`. */
export const SPENDING = { windowMs: HOUR, slideMs: 30 * MINUTE, watermarkMs: 10 * MINUTE, threshold: 1000, thresholdB: 600, minPurchases: 3 } as const;
/** The 50/50 rollout the tests give spending_spike. */
export const SPENDING_WEIGHTS = { A: 50, B: 50 } as const;

/**
 * The oracle hard-codes the params above; fail loudly when a manifest changes them instead
 * of comparing against stale numbers.
 */
export function checkManifestParams(projectRoot: string): void {
  const expect = (usecase: string, lines: string[]): void => {
    const text = readFileSync(join(projectRoot, 'usecases', usecase, 'usecase.yaml'), 'utf8');
    for (const line of lines) {
      if (!new RegExp(`^\\s*${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'm').test(text)) throw new Error(`usecases/${usecase}/usecase.yaml no longer has "${line}": update test/support/e2e-dataset.ts`);
    }
  };
  expect('data_quality', ['max_amount: 1000000', 'future_tolerance_minutes: 5']);
  expect('spending_spike', ['window: 1 hour', 'slide: 30 minutes', 'watermark: 10 minutes', 'threshold: 1000', 'threshold_b: 600', 'min_purchases: 3']);
}

/** What a client posts to the ingest API (JSON). */
export type SourceRecord = Record<string, unknown>;

/** What upstream must make of an accepted source record (the fields the use cases read). */
export interface InputRecord {
  readonly record_id: string;
  readonly customer_id: string;
  readonly event_time: number;
  readonly type: string;
  readonly amount: number | null;
  readonly currency: string | null;
}

export interface Dataset {
  /** Requests in sending order; each spans less than 5 minutes of event time (see generate). */
  readonly batches: readonly (readonly SourceRecord[])[];
  /** Every record upstream must accept, by record_id. */
  readonly accepted: ReadonlyMap<string, InputRecord>;
  /** How many sent records upstream must reject. */
  readonly rejected: number;
  readonly customers: readonly string[];
}

/** mulberry32: small, seeded, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DatasetOptions {
  readonly seed?: number;
  readonly customers?: number;
  /** Event-time span of the stream. */
  readonly hours?: number;
  /** Mean minutes between two records of one customer. */
  readonly meanGapMinutes?: number;
  /** Event time of the first record (default: three days ago, on the hour). */
  readonly start?: number;
}

/**
 * Records of several customers over `hours` of event time. Most are purchases of 5–60;
 * in about one hour in eight a customer buys 150–450 a time, and three rare buyers buy
 * 500–900 (so spending_spike fires in A only, B only, or both); some carry data-quality faults (negative, missing or huge amounts, no
 * currency, dated a month ahead) and some are malformed so that upstream rejects them.
 *
 * Requests group records by 5-minute slices of event time and go out in time order, so
 * no purchase reaches spending_spike more than 5 minutes behind the newest one it saw:
 * none falls behind its 10-minute watermark, whatever the micro-batch boundaries. Records
 * dated in the future are never purchases with an amount (they would move the watermark a
 * month ahead). A last request carries one small purchase of a separate customer 3 hours
 * after the rest: it moves the watermark past every window, so every window is emitted.
 */
export function generateDataset(options: DatasetOptions = {}): Dataset {
  const random = prng(options.seed ?? 7);
  const int = (from: number, to: number): number => from + Math.floor(random() * (to - from + 1));
  const hours = options.hours ?? 16;
  const start = options.start ?? Math.floor((Date.now() - 3 * 24 * HOUR) / HOUR) * HOUR;
  const end = start + hours * HOUR;
  const customers = Array.from({ length: options.customers ?? 16 }, (_, i) => `cust-${String(i + 1).padStart(2, '0')}`);
  const slice = 5 * MINUTE;
  const bySlice = new Map<number, SourceRecord[]>();
  const accepted = new Map<string, InputRecord>();
  let rejected = 0;
  let sequence = 0;
  const iso = (ms: number): string => new Date(ms).toISOString();

  for (const [index, customer] of customers.entries()) {
    // The last three buy rarely but big: their windows cross A's threshold with fewer
    // purchases than B asks for, so A fires where B does not.
    const sparse = index >= customers.length - 3;
    const meanGap = sparse ? 40 : (options.meanGapMinutes ?? 5);
    const spikeHours = new Set(Array.from({ length: hours }, (_, h) => h).filter(() => random() < (sparse ? 0.3 : 0.125)));
    for (let at = start + int(0, 10) * MINUTE; at < end; at += int(1, 2 * meanGap - 1) * MINUTE + int(0, 59_999)) {
      const id = `r-${String(++sequence).padStart(5, '0')}`;
      const spike = spikeHours.has(Math.floor((at - start) / HOUR));
      const big = (): number => (sparse ? int(500, 900) : int(150, 450));
      const roll = random();
      let source: SourceRecord;
      let input: InputRecord | null;
      const base = { record_id: id, customer_id: customer, event_time: iso(at) };
      const purchase = (amount: number | null, currency: string | null = 'EUR'): void => {
        source = { ...base, type: 'purchase', ...(amount === null ? {} : { amount }), ...(currency === null ? {} : { currency }) };
        input = { record_id: id, customer_id: customer, event_time: at, type: 'purchase', amount, currency };
      };
      source = {};
      input = null;
      if (roll < 0.02) { // rejected by upstream: four kinds of malformed input
        rejected++;
        source = [
          { record_id: id, event_time: iso(at), type: 'purchase', amount: 10, currency: 'EUR' }, // no customer
          { ...base, event_time: 'yesterday', type: 'purchase', amount: 10 }, // not a time
          { ...base, type: 'purchase', amount: 'lots' }, // not an amount
          { ...base, amount: 10, currency: 'EUR' }, // no type
        ][int(0, 3)]!;
      } else if (roll < 0.04) {
        purchase(-int(5, 50)); // negative_amount
      } else if (roll < 0.06) {
        purchase(null); // missing_amount
      } else if (roll < 0.08) {
        purchase(spike ? big() : int(5, 60), null); // missing_currency (and still counts as spend)
      } else if (roll < 0.09) {
        purchase(2_000_000); // amount_out_of_range (and a spike)
      } else if (roll < 0.10) { // dated a month ahead: a login, or a refund without amount (two findings)
        const future = at + 30 * 24 * HOUR + int(0, 24) * HOUR;
        const refund = random() < 0.5;
        source = { ...base, event_time: iso(future), type: refund ? 'refund' : 'login' };
        input = { record_id: id, customer_id: customer, event_time: future, type: refund ? 'refund' : 'login', amount: null, currency: null };
      } else if (roll < 0.18) {
        const type = ['refund', 'payment', 'login'][int(0, 2)]!;
        const amount = type === 'login' ? null : int(5, 80);
        source = { ...base, type, ...(amount === null ? {} : { amount, currency: 'EUR' }) };
        input = { record_id: id, customer_id: customer, event_time: at, type, amount, currency: amount === null ? null : 'EUR' };
      } else {
        purchase(spike ? big() : int(5, 60));
      }
      const key = Math.floor(at / slice);
      bySlice.set(key, [...(bySlice.get(key) ?? []), source]);
      if (input) accepted.set(id, input);
    }
  }
  const batches = [...bySlice.keys()].sort((a, b) => a - b).map((key) => bySlice.get(key)!);
  const flushAt = end + 3 * HOUR;
  const flush: InputRecord = { record_id: 'r-flush', customer_id: 'flush', event_time: flushAt, type: 'purchase', amount: 1, currency: 'EUR' };
  batches.push([{ record_id: flush.record_id, customer_id: flush.customer_id, event_time: iso(flushAt), type: 'purchase', amount: 1, currency: 'EUR' }]);
  accepted.set(flush.record_id, flush);
  return { batches, accepted, rejected, customers };
}

/** The fields of a feedback row the tests compare (message and version are presentation). */
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
}

export function feedbackId(usecase: string, variant: string, key: string, kind: string): string {
  return createHash('sha256').update(`${usecase}|${variant}|${key}|${kind}`).digest('hex');
}

/** Documented A/B assignment (README "A/B post-filter"), for weights given in variant order. */
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

/** data_quality's five checks, one row per finding (key = the record id). */
export function dataQualityRows(records: readonly InputRecord[], usecase: string, processedAt: number): ExpectedRow[] {
  const rows: ExpectedRow[] = [];
  for (const r of records) {
    const findings: [string, string][] = [];
    if (r.amount === null && (DATA_QUALITY.moneyTypes as readonly string[]).includes(r.type)) findings.push(['missing_amount', 'warning']);
    if (r.amount !== null && r.currency === null) findings.push(['missing_currency', 'warning']);
    if (r.amount !== null && r.amount < 0 && r.type === 'purchase') findings.push(['negative_amount', 'warning']);
    if (r.amount !== null && Math.abs(r.amount) > DATA_QUALITY.maxAmount) findings.push(['amount_out_of_range', 'critical']);
    if (r.event_time > processedAt + DATA_QUALITY.futureToleranceMs) findings.push(['future_timestamp', 'warning']);
    for (const [kind, severity] of findings) {
      rows.push({ feedback_id: feedbackId(usecase, 'A', r.record_id, kind), customer_id: r.customer_id, usecase, variant: 'A', kind, severity, score: null, event_time: r.event_time, record_ids: [r.record_id] });
    }
  }
  return rows;
}

/**
 * spending_spike's windows: purchases with an amount, per customer, in every 1-hour window
 * sliding by 30 minutes (aligned to the epoch, as Spark's window()) that contains them.
 * A: spend > threshold. B: spend > threshold_b with at least min_purchases purchases.
 * Only windows the watermark closed are emitted: those ending at or before the newest
 * purchase's time minus the watermark delay.
 */
export function spendingRows(records: readonly InputRecord[]): ExpectedRow[] {
  const windows = new Map<string, { customer: string; start: number; spend: number; purchases: number; ids: string[] }>();
  const purchases = records.filter((r) => r.type === 'purchase' && r.amount !== null);
  const watermark = Math.max(...purchases.map((r) => r.event_time)) - SPENDING.watermarkMs;
  for (const r of purchases) {
    const last = r.event_time - (r.event_time % SPENDING.slideMs);
    for (let start = last; start > r.event_time - SPENDING.windowMs; start -= SPENDING.slideMs) {
      const key = `${r.customer_id}|${new Date(start).toISOString().slice(0, 16)}`;
      const window = windows.get(key) ?? { customer: r.customer_id, start, spend: 0, purchases: 0, ids: [] };
      window.spend += r.amount!;
      window.purchases += 1;
      window.ids.push(r.record_id);
      windows.set(key, window);
    }
  }
  const rows: ExpectedRow[] = [];
  for (const [key, w] of windows) {
    const end = w.start + SPENDING.windowMs;
    if (end > watermark) continue;
    const rules: [string, number, boolean][] = [
      ['A', SPENDING.threshold, w.spend > SPENDING.threshold],
      ['B', SPENDING.thresholdB, w.spend > SPENDING.thresholdB && w.purchases >= SPENDING.minPurchases],
    ];
    for (const [variant, threshold, fires] of rules) {
      if (!fires) continue;
      rows.push({
        feedback_id: feedbackId('spending_spike', variant, key, 'spending_spike'), customer_id: w.customer, usecase: 'spending_spike', variant,
        kind: 'spending_spike', severity: w.spend > 3 * threshold ? 'critical' : 'warning', score: w.spend / threshold, event_time: end,
        record_ids: [...w.ids].sort(),
      });
    }
  }
  return rows;
}

export interface Expected {
  /** Every variant's rows (feedback_by_variant). */
  readonly all: readonly ExpectedRow[];
  /** What customers receive (feedback_by_customer): spending_spike filtered by the rollout. */
  readonly delivered: readonly ExpectedRow[];
}

/**
 * The rows `records` (as they landed on the normalized topic, duplicates included: a
 * purchase that landed twice counts twice in its windows, as it does for Spark) must
 * produce with data_quality (and `copies` of it under other names) and spending_spike A and B.
 */
export function expectedFeedback(records: readonly InputRecord[], options: { copies?: readonly string[]; processedAt?: number } = {}): Expected {
  const processedAt = options.processedAt ?? Date.now();
  const distinct = [...new Map(records.map((r) => [r.record_id, r])).values()];
  const quality = ['data_quality', ...(options.copies ?? [])].flatMap((usecase) => dataQualityRows(distinct, usecase, processedAt));
  const spending = spendingRows(records);
  const delivered = spending.filter((row) => assignedVariant('spending_spike', row.customer_id, SPENDING_WEIGHTS) === row.variant);
  return { all: [...quality, ...spending], delivered: [...quality, ...delivered] };
}

/** The fields the oracle knows, from a record decoded off the normalized topic. */
export function inputOf(record: CustomerRecord): InputRecord {
  return { record_id: record.record_id, customer_id: record.customer_id, event_time: record.event_time, type: record.type, amount: record.amount, currency: record.currency };
}
