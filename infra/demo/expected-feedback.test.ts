import test from 'ava';
import type { DemoRecord } from './dataset.ts';
import { dataQualityRows, parseSparkDuration, readDemoParams, readManifestParams, spendingRows, windowStarts } from './expected-feedback.ts';

const root = new URL('../..', import.meta.url).pathname;
const H = 3_600_000;
const M = 60_000;
const T0 = Date.parse('2026-11-22T10:00:00Z');
const spending = { windowMs: H, slideMs: 30 * M, watermarkMs: 10 * M, threshold: 1000, thresholdB: 600, minPurchases: 3 };

let n = 0;
const purchase = (customer: string, at: number, amount: number | null, type = 'purchase'): DemoRecord => ({
  record_id: `r-${++n}`, customer_id: customer, event_time: at, type, amount, currency: 'EUR',
});

test('the manifests parameters are read from usecase.yaml', (t) => {
  t.like(readManifestParams(`${root}usecases/spending_spike`), { window: '1 hour', threshold: '1000', min_purchases: '3' });
  const params = readDemoParams(root);
  t.deepEqual(params.spending, spending);
  t.deepEqual(params.dataQuality, { maxAmount: 1_000_000, futureToleranceMs: 5 * M });
  t.is(parseSparkDuration('90 seconds'), 90_000);
  t.throws(() => parseSparkDuration('soon'), { message: /not a duration/ });
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
  t.deepEqual(rows.map((r) => `${r.customerId} ${r.variant} ${new Date(r.windowStart!).toISOString().slice(11, 16)}`), [
    'big A 09:30', 'big A 10:00', 'many B 09:30', 'many B 10:00',
  ]);
});

test('spending_spike over two runs: purchases behind the first run\'s watermark are late; only windows emitted by the second run count', (t) => {
  const first = [purchase('x', T0 + 5 * M, 1500), purchase('x', T0 + 100 * M, 5)];
  const second = [purchase('x', T0 + 20 * M, 1500), purchase('y', T0 + 95 * M, 1500), purchase('x', T0 + 200 * M, 5)];
  const alone = spendingRows([first], spending);
  t.is(alone.rows.length, 2);
  const both = spendingRows([first, second], spending);
  t.is(both.watermarkBefore, T0 + 90 * M);
  t.is(both.latePurchases, 1, 'the 10:20 purchase is behind 11:30');
  t.deepEqual(both.rows.map((r) => `${r.customerId} ${new Date(r.windowStart!).toISOString().slice(11, 16)}`), ['y 11:00', 'y 11:30']);
});
