import test from 'ava';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InputRecord } from './generator.ts';
import { checkManifestParams, parseSparkDuration, readManifestParams, readOracleParams } from './manifest-params.ts';
import { assignedVariant, dataQualityRows, expectedFeedback, feedbackId, spendingRows, windowStarts } from './oracle.ts';

const root = new URL('../..', import.meta.url).pathname;
const H = 3_600_000;
const M = 60_000;
const T0 = Date.parse('2026-11-22T10:00:00Z');
const spending = { windowMs: H, slideMs: 30 * M, watermarkMs: 10 * M, threshold: 1000, thresholdB: 600, minPurchases: 3 };

let n = 0;
const purchase = (customer: string, at: number, amount: number | null, type = 'purchase'): InputRecord => ({
  record_id: `r-${++n}`, customer_id: customer, event_time: at, type, amount, currency: 'EUR',
});

test('the manifests parameters are read from usecase.yaml', (t) => {
  t.like(readManifestParams(`${root}usecases/spending_spike`), { window: '1 hour', threshold: '1000', min_purchases: '3' });
  const params = readOracleParams(root);
  t.deepEqual(params.spending, spending);
  t.deepEqual(params.dataQuality, { maxAmount: 1_000_000, futureToleranceMs: 5 * M });
  t.deepEqual(checkManifestParams(root), params);
  t.is(parseSparkDuration('90 seconds'), 90_000);
  t.throws(() => parseSparkDuration('soon'), { message: /not a duration/ });
});

test('checkManifestParams fails loudly, naming the file and param, when a manifest drops or garbles one the oracle models', (t) => {
  const copy = mkdtempSync(join(tmpdir(), 'diamond-oracle-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  for (const usecase of ['data_quality', 'spending_spike']) cpSync(join(root, 'usecases', usecase, 'usecase.yaml'), join(copy, 'usecases', usecase, 'usecase.yaml'), { recursive: true });
  const manifest = join(copy, 'usecases', 'spending_spike', 'usecase.yaml');
  const original = readFileSync(manifest, 'utf8');
  writeFileSync(manifest, original.replace(/^\s*threshold_b:.*$/m, ''));
  t.throws(() => checkManifestParams(copy), { code: 'DIAMOND_DATASET_PARAMS', message: /spending_spike\/usecase\.yaml has no params\.threshold_b/ });
  t.is(readOracleParams(copy).spending.thresholdB, 600, 'the lenient reader falls back to the job\'s default');
  writeFileSync(manifest, original.replace('threshold: 1000', 'threshold: lots'));
  t.throws(() => checkManifestParams(copy), { code: 'DIAMOND_DATASET_PARAMS', message: /params\.threshold is not a number/ });
  writeFileSync(manifest, original.replace('threshold: 1000', 'threshold: 1500'));
  t.is(checkManifestParams(copy).spending.threshold, 1500, 'a changed param changes the oracle');
});

test("Spark's sliding windows: starts aligned to the slide, the time inside", (t) => {
  t.deepEqual(windowStarts(T0 + 45 * M, spending), [T0, T0 + 30 * M]);
  t.deepEqual(windowStarts(T0 + 30 * M, spending), [T0, T0 + 30 * M]);
  t.deepEqual(windowStarts(T0, spending), [T0 - 30 * M, T0]);
});

test('data_quality: one row per finding, as job.py flags them', (t) => {
  const now = T0;
  const rows = dataQualityRows([
    purchase('a', T0 - M, 12),
    purchase('a', T0 - M, null),
    { ...purchase('a', T0 - M, 12), currency: null },
    purchase('a', T0 - M, -5),
    purchase('a', T0 - M, -5, 'refund'),
    purchase('a', T0 - M, 2_000_000, 'payment'),
    purchase('a', T0 + 2 * H, 10, 'refund'),
    purchase('a', T0 + 4 * M, 10, 'refund'), // within the tolerance
    purchase('a', T0 - M, null, 'view'),
  ], { maxAmount: 1_000_000, futureToleranceMs: 5 * M }, now);
  t.deepEqual(rows.map((r) => r.kind), ['missing_amount', 'missing_currency', 'negative_amount', 'amount_out_of_range', 'future_timestamp']);
  t.deepEqual(rows.map((r) => r.severity), ['warning', 'warning', 'warning', 'critical', 'warning']);
  const first = rows[0]!;
  t.is(first.feedback_id, feedbackId('data_quality', 'A', first.record_ids[0]!, 'missing_amount'));
  t.like(first, { usecase: 'data_quality', variant: 'A', score: null, event_time: T0 - M });
  const copy = dataQualityRows([purchase('a', T0, null)], { maxAmount: 1_000_000, futureToleranceMs: 5 * M }, now, 'quality_copy');
  t.like(copy[0], { usecase: 'quality_copy', variant: 'A' });
});

test('feedback_id is sha256 of usecase|variant|key|kind, as the SDK documents', (t) => {
  t.is(feedbackId('data_quality', 'A', 'r-1', 'missing_amount'), 'b29d4f295ad46f56c282e72e6dc8f9fd54b177f289c1a9c4ae7c2f40802a3e4d'); // hashlib.sha256(b'data_quality|A|r-1|missing_amount')
  t.regex(feedbackId('u', 'A', 'k', 'kind'), /^[0-9a-f]{64}$/);
  t.not(feedbackId('u', 'A', 'k', 'kind'), feedbackId('u', 'B', 'k', 'kind'));
});

test('A/B: the bucket formula, weights in variant order, raising B only moves customers from A to B', (t) => {
  const customers = Array.from({ length: 500 }, (_, i) => `c-${i}`);
  const at = (weights: Record<string, number>): (string | null)[] => customers.map((c) => assignedVariant('spending_spike', c, weights));
  const ninety = at({ A: 90, B: 10 });
  const half = at({ B: 50, A: 50 });
  t.true(ninety.filter((v) => v === 'B').length < half.filter((v) => v === 'B').length);
  t.true(customers.every((_, i) => ninety[i] !== 'B' || half[i] === 'B'), 'nobody moves from B back to A');
  t.deepEqual(new Set(at({ A: 100 })), new Set(['A']));
  t.deepEqual(new Set(at({ A: 0, B: 100 })), new Set(['B']));
});

test('duplicates: a record that landed twice gives its data_quality rows once, and counts once in its windows (the SDK drops repeated record ids)', (t) => {
  const twice = { ...purchase('d', T0 + 5 * M, 600), currency: null };
  const records = [twice, twice, purchase('d', T0 + 10 * M, 1), purchase('z', T0 + 200 * M, 1)];
  const { all } = expectedFeedback([[...records, { ...purchase('d', T0, null) }]], { dataQuality: { maxAmount: 1_000_000, futureToleranceMs: 5 * M }, spending }, { processedAt: T0 + 300 * M });
  t.deepEqual(all.filter((r) => r.usecase === 'data_quality').map((r) => r.kind).sort(), ['missing_amount', 'missing_currency']);
  const a = all.filter((r) => r.usecase === 'spending_spike' && r.variant === 'A');
  t.deepEqual(a, [], 'once, 600 + 1 is under the threshold');
  const b = all.filter((r) => r.usecase === 'spending_spike' && r.variant === 'B');
  t.deepEqual(b, [], 'once, two purchases are under min_purchases');
  const big = purchase('e', T0 + 5 * M, 600);
  const other = purchase('e', T0 + 10 * M, 500);
  const run = [big, big, other, purchase('z', T0 + 200 * M, 1)];
  const [first] = spendingRows([run], spending).rows;
  t.deepEqual(first!.record_ids, [big.record_id, other.record_id].sort());
  t.deepEqual(spendingRows([run, [big]], spending).rows, [], 'a copy in a later run is behind the watermark (and its windows were emitted by the first run)');
  t.is(first!.score, 1100 / 1000);
});

test('spending_spike: A flags spend above the threshold, B needs enough purchases; a window closes with the watermark', (t) => {
  const records = [
    purchase('big', T0 + 5 * M, 1200), // A only: one purchase
    purchase('many', T0 + 5 * M, 250), purchase('many', T0 + 10 * M, 250), purchase('many', T0 + 15 * M, 250), // B only
    purchase('late-window', T0 + 100 * M, 5000), // its windows are still open at the end
    purchase('any', T0 + 110 * M, 5), // watermark → T0 + 100 min: closes windows ending at 10:30, 11:00 and 11:30
  ];
  const { rows, watermarkAfter } = spendingRows([records], spending);
  t.is(watermarkAfter, T0 + 100 * M);
  t.deepEqual(rows.map((r) => `${r.customer_id} ${r.variant} ${new Date(r.window!.start).toISOString().slice(11, 16)}`), [
    'big A 09:30', 'big A 10:00', 'many B 09:30', 'many B 10:00',
  ]);
  const big = rows[0]!;
  t.like(big, { severity: 'warning', score: 1.2, event_time: T0 + 30 * M, kind: 'spending_spike' });
  t.is(big.feedback_id, feedbackId('spending_spike', 'A', 'big|2026-11-22T09:30', 'spending_spike'), 'key = customer|window start to the minute');
  const huge = spendingRows([[purchase('huge', T0 + 5 * M, 3500), purchase('any', T0 + 110 * M, 5)]], spending).rows[0]!;
  t.like(huge, { severity: 'critical', score: 3.5 });
});

test('spending_spike over two runs: purchases behind the first run\'s watermark are late; only windows emitted by the second run count', (t) => {
  const first = [purchase('x', T0 + 5 * M, 1500), purchase('x', T0 + 100 * M, 5)];
  const second = [purchase('x', T0 + 20 * M, 1500), purchase('y', T0 + 95 * M, 1500), purchase('x', T0 + 200 * M, 5)];
  const alone = spendingRows([first], spending);
  t.is(alone.rows.length, 2);
  const both = spendingRows([first, second], spending);
  t.is(both.watermarkBefore, T0 + 90 * M);
  t.is(both.latePurchases, 1, 'the 10:20 purchase is behind 11:30');
  t.deepEqual(both.rows.map((r) => `${r.customer_id} ${new Date(r.window!.start).toISOString().slice(11, 16)}`), ['y 11:00', 'y 11:30']);
});
