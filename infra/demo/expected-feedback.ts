/**
 * What feedback the demo's records must produce, computed independently of Spark from the
 * dataset and the use cases' parameters: the data_quality findings of every accepted record,
 * and the spending_spike windows each variant flags, including the watermark's effect
 * (windows are emitted once the watermark passes their end; purchases older than the
 * watermark left by earlier demo runs are dropped as late). Pure: no I/O except reading
 * the manifests' parameters.
 *
 * The demo waits until the customers' feedback API shows this many rows of this run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiamondError } from '../../shared/errors.ts';
import type { DemoDataset, DemoRecord } from './dataset.ts';

export interface DemoParams {
  readonly dataQuality: { readonly maxAmount: number; readonly futureToleranceMs: number };
  readonly spending: {
    readonly windowMs: number;
    readonly slideMs: number;
    readonly watermarkMs: number;
    /** Variant A: spend above it. */
    readonly threshold: number;
    /** Variant B: spend above it over at least minPurchases purchases. */
    readonly thresholdB: number;
    readonly minPurchases: number;
  };
}

export interface ExpectedRow {
  readonly usecase: 'data_quality' | 'spending_spike';
  readonly variant: string;
  readonly customerId: string;
  readonly kind: string;
  readonly recordIds: readonly string[];
  /** spending_spike: the window's spend and purchase count. */
  readonly spend?: number;
  readonly purchases?: number;
  readonly windowStart?: number;
}

const MONEY_TYPES = new Set(['purchase', 'refund', 'payment']);

/** The flat `params:` block of a usecase.yaml (`key: value  # comment` lines). */
export function readManifestParams(folder: string): Record<string, string> {
  const text = readFileSync(join(folder, 'usecase.yaml'), 'utf8');
  const params: Record<string, string> = {};
  let inParams = false;
  for (const line of text.split('\n')) {
    if (/^params:\s*$/.test(line)) {
      inParams = true;
      continue;
    }
    if (inParams && /^\S/.test(line)) break;
    const match = inParams ? /^\s+([A-Za-z_][\w]*):\s*(.*?)\s*(?:#.*)?$/.exec(line) : null;
    if (match?.[1]) params[match[1]] = match[2]!.replace(/^["']|["']$/g, '');
  }
  return params;
}

/** "1 hour", "30 minutes", "10 seconds" → millis. */
export function parseSparkDuration(text: string): number {
  const match = /^(\d+)\s*(second|minute|hour|day)s?$/i.exec(text.trim());
  if (!match) throw new DiamondError(`"${text}" is not a duration the demo understands`, { code: 'DIAMOND_DEMO_PARAMS', hint: 'write durations like "1 hour" or "30 minutes" in usecase.yaml' });
  const unit = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 }[match[2]!.toLowerCase() as 'second'];
  return Number(match[1]) * unit;
}

/** The parameters of usecases/data_quality and usecases/spending_spike, with the jobs' own defaults. */
export function readDemoParams(projectRoot: string): DemoParams {
  const quality = readManifestParams(join(projectRoot, 'usecases', 'data_quality'));
  const spending = readManifestParams(join(projectRoot, 'usecases', 'spending_spike'));
  return {
    dataQuality: {
      maxAmount: Number(quality.max_amount ?? 1_000_000),
      futureToleranceMs: Number(quality.future_tolerance_minutes ?? 5) * 60_000,
    },
    spending: {
      windowMs: parseSparkDuration(spending.window ?? '1 hour'),
      slideMs: parseSparkDuration(spending.slide ?? '30 minutes'),
      watermarkMs: parseSparkDuration(spending.watermark ?? '10 minutes'),
      threshold: Number(spending.threshold ?? 1000),
      thresholdB: Number(spending.threshold_b ?? 600),
      minPurchases: Number(spending.min_purchases ?? 3),
    },
  };
}

/** usecases/data_quality/job.py, record by record. `now` is when the job sees the record. */
export function dataQualityRows(records: readonly DemoRecord[], params: DemoParams['dataQuality'], now: number): ExpectedRow[] {
  const rows: ExpectedRow[] = [];
  for (const r of records) {
    const add = (kind: string): void => void rows.push({ usecase: 'data_quality', variant: 'A', customerId: r.customer_id, kind, recordIds: [r.record_id] });
    if (r.amount === null && MONEY_TYPES.has(r.type)) add('missing_amount');
    if (r.amount !== null && r.currency === null) add('missing_currency');
    if (r.amount !== null && r.amount < 0 && r.type === 'purchase') add('negative_amount');
    if (r.amount !== null && Math.abs(r.amount) > params.maxAmount) add('amount_out_of_range');
    if (r.event_time > now + params.futureToleranceMs) add('future_timestamp');
  }
  return rows;
}

interface Window {
  readonly customerId: string;
  readonly start: number;
  spend: number;
  purchases: number;
  readonly recordIds: string[];
}

export interface SpendingOutcome {
  /** Rows of both variants, for the windows emitted by the end of the last run. */
  readonly rows: readonly ExpectedRow[];
  /** Purchases of the last run dropped as late (older than the watermark earlier runs left). */
  readonly latePurchases: number;
  /** The watermark before the last run, or null when it is the first. */
  readonly watermarkBefore: number | null;
  readonly watermarkAfter: number | null;
}

/**
 * usecases/spending_spike over several runs' records, each run sent in event-time order
 * (as the demo sends them) into the same stateful job. Rows are those of windows emitted
 * after the previous run, i.e. the feedback the last run adds.
 */
export function spendingRows(runs: readonly (readonly DemoRecord[])[], params: DemoParams['spending']): SpendingOutcome {
  const windows = new Map<string, Window>();
  let watermark: number | null = null;
  let watermarkBefore: number | null = null;
  let latePurchases = 0;
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
    const base = { usecase: 'spending_spike' as const, customerId: w.customerId, kind: 'spending_spike', recordIds: [...w.recordIds].sort(), spend: w.spend, purchases: w.purchases, windowStart: w.start };
    if (w.spend > params.threshold) rows.push({ ...base, variant: 'A' });
    if (w.spend > params.thresholdB && w.purchases >= params.minPurchases) rows.push({ ...base, variant: 'B' });
  }
  rows.sort((a, b) => a.customerId.localeCompare(b.customerId) || a.windowStart! - b.windowStart! || a.variant.localeCompare(b.variant));
  return { rows, latePurchases, watermarkBefore, watermarkAfter: watermark };
}

/** Spark's sliding windows holding time t: starts aligned to the slide, t in [start, start + window). */
export function windowStarts(time: number, params: Pick<DemoParams['spending'], 'windowMs' | 'slideMs'>): number[] {
  const last = time - (((time % params.slideMs) + params.slideMs) % params.slideMs);
  const starts: number[] = [];
  for (let start = last; start > time - params.windowMs; start -= params.slideMs) starts.push(start);
  return starts.reverse();
}

/** A use case's variant that reaches the customer: the rollout's choice, or every variant without weights. */
export type VariantFilter = (usecase: string, customerId: string, variant: string) => boolean;

export interface ExpectedFeedback {
  /** Every row the use cases produce for this run (all variants). */
  readonly rows: readonly ExpectedRow[];
  /** The rows customers see through the feedback API (their assigned variant only). */
  readonly visible: readonly ExpectedRow[];
  readonly spending: SpendingOutcome;
}

/**
 * The feedback of the last dataset of `runs` (earlier ones are earlier demo runs, replayed
 * so the spending watermark and open windows are where they left them).
 */
export function expectedFeedback(runs: readonly DemoDataset[], params: DemoParams, visibleTo: VariantFilter, now: number): ExpectedFeedback {
  const current = runs.at(-1);
  if (!current) throw new Error('expectedFeedback needs at least one dataset');
  const accepted = (d: DemoDataset): DemoRecord[] => d.items.flatMap((i) => (i.record ? [i.record] : []));
  const spending = spendingRows(runs.map(accepted), params.spending);
  const prefix = `${current.tag}-`;
  const ofThisRun = spending.rows.filter((r) => r.recordIds.some((id) => id.startsWith(prefix)));
  const rows = [...dataQualityRows(accepted(current), params.dataQuality, now), ...ofThisRun];
  return { rows, visible: rows.filter((r) => visibleTo(r.usecase, r.customerId, r.variant)), spending: { ...spending, rows: ofThisRun } };
}
