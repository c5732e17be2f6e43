import test, { type ExecutionContext } from 'ava';
import { assignVariant } from '../../downstream/index.ts';
import { normalizeRecord, resolveMapping } from '../../upstream/index.ts';
// The generator's predictions are checked against the real upstream normalizer and the real
// downstream assignment here (tests only: the generator and the oracle import neither).
import { datasetCounts, DEMO_CUSTOMERS, FLAGGED_FAULTS, generateDataset, generateLateFollowUp, lateE2eRuns, REJECTED_FAULTS, SPENDING_WEIGHTS, type Dataset, type Profile } from './generator.ts';
import { checkManifestParams } from './manifest-params.ts';
import { assignedVariant, expectedFeedback, spendingRows } from './oracle.ts';

const anchor = Date.parse('2026-11-22T14:07:31Z');
const params = checkManifestParams(new URL('../..', import.meta.url).pathname);
const weights = SPENDING_WEIGHTS;
const accepted = (d: Dataset): NonNullable<Dataset['items'][number]['record']>[] => d.items.flatMap((i) => (i.record ? [i.record] : []));
const oracle = (runs: readonly Dataset[], processedAt: number): ReturnType<typeof expectedFeedback> =>
  expectedFeedback(runs.map(accepted), params, { processedAt, weights: { spending_spike: weights } });
/** The e2e suite's shape (test/support/e2e.ts): 12 hours, a pattern every 2 hours, a flush, whole amounts. */
const e2eShape = (seed: number, at: number): Dataset => generateDataset({ seed, anchor: at, spanMinutes: 12 * 60, patternEveryMinutes: 120, flushAfterMinutes: 180, wholeAmounts: true, tag: 'r' });

test('the same seed and anchor give the same records, byte for byte; another seed does not', (t) => {
  const one = generateDataset({ seed: 7, anchor });
  t.deepEqual(generateDataset({ seed: 7, anchor }), one);
  t.notDeepEqual(generateDataset({ seed: 8, anchor }).items.map((i) => i.line), one.items.map((i) => i.line));
  t.regex(one.tag, /^demo-[0-9a-z]+$/);
  t.true(one.items.every((i, n) => i.line.includes(`${one.tag}-${String(n + 1).padStart(5, '0')}`)), 'record ids follow the send order');
});

test('upstream accepts exactly the records the dataset says it accepts, and normalizes them as predicted', (t) => {
  for (const dataset of [generateDataset({ seed: 7, anchor }), e2eShape(7, anchor)]) checkNormalized(t, dataset);
});

function checkNormalized(t: ExecutionContext, dataset: Dataset): void {
  const mapping = resolveMapping({});
  t.is(dataset.accepted.size + dataset.rejected, dataset.items.length);
  for (const item of dataset.items) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(item.line);
    } catch {
      t.is(item.fault, 'malformed_json', item.line);
      t.is(item.record, null);
      continue;
    }
    const result = normalizeRecord(parsed, { source: 'demo', mapping, ingestedAt: anchor });
    t.is(result.ok, item.record !== null, `${item.fault ?? 'normal'}: ${item.line}`);
    if (result.ok && item.record) {
      const { record_id, customer_id, event_time, type, amount, currency } = result.record;
      // Same keys in the same order: the e2e suite compares landed records as JSON text.
      t.is(JSON.stringify({ record_id, customer_id, event_time, type, amount, currency }), JSON.stringify(item.record));
      t.is(dataset.accepted.get(item.recordId), item.record);
    }
  }
}

test('a few hundred records, about 8 % faulty, every kind of fault present, sent in event-time order', (t) => {
  const dataset = generateDataset({ seed: 7, anchor });
  const counts = datasetCounts(dataset);
  t.true(counts.records > 500 && counts.records < 1500, `${counts.records} records`);
  const faults = counts.rejected + counts.flagged;
  t.true(faults > counts.records * 0.06 && faults < counts.records * 0.1, `${faults} faults`);
  for (const kind of [...FLAGGED_FAULTS, ...REJECTED_FAULTS]) t.true(dataset.items.some((i) => i.fault === kind), kind);
  t.true(dataset.items.every((item, n) => n === 0 || item.sendAt >= dataset.items[n - 1]!.sendAt));
  for (const { record, fault } of dataset.items) {
    if (!record) continue;
    if (fault === 'future_timestamp') t.true(record.event_time > anchor + 3600_000 && record.event_time < anchor + 21 * 3600_000);
    else t.true(record.event_time >= dataset.start && record.event_time < anchor, 'recent event times');
  }
  const purchasesInFuture = dataset.items.filter((i) => i.record?.type === 'purchase' && i.record.event_time > anchor);
  t.deepEqual(purchasesInFuture, [], 'no purchase moves the spending watermark ahead');
});

test('whatever the anchor, each profile gets the A/B outcome it was designed for, and both variants reach some customer', (t) => {
  const expected: Record<Profile, { A: boolean; B: boolean }> = {
    burst: { A: true, B: true },
    'big-burst': { A: true, B: true },
    'single-big': { A: true, B: false },
    'many-medium': { A: false, B: true },
    steady: { A: false, B: false },
  };
  for (let i = 0; i < 24; i++) {
    const at = anchor + i * 37 * 60_000; // walks the anchor over the windows' alignment
    for (const seed of [7, 11]) {
      const dataset = generateDataset({ seed, anchor: at });
      const { all, delivered, spending } = oracle([dataset], at);
      t.is(spending.latePurchases, 0);
      for (const customer of DEMO_CUSTOMERS) {
        const flaggedBy = (variant: string): boolean => all.some((r) => r.usecase === 'spending_spike' && r.customer_id === customer.id && r.variant === variant);
        t.deepEqual({ A: flaggedBy('A'), B: flaggedBy('B') }, expected[customer.profile], `${customer.id} (${customer.profile}), seed ${seed}, anchor ${new Date(at).toISOString()}`);
      }
      const seen = new Set(delivered.filter((r) => r.usecase === 'spending_spike').map((r) => r.variant));
      t.deepEqual([...seen].sort(), ['A', 'B']);
    }
  }
});

test('the demo customers split evenly between A and B at 50/50', (t) => {
  const inA = DEMO_CUSTOMERS.filter((c) => assignVariant(c.id, 'spending_spike', weights) === 'A');
  t.is(inA.length, DEMO_CUSTOMERS.length / 2);
  for (const profile of ['burst', 'single-big', 'many-medium', 'steady'] as const) {
    const variants = DEMO_CUSTOMERS.filter((c) => c.profile === profile || (profile === 'burst' && c.profile === 'big-burst')).map((c) => assignVariant(c.id, 'spending_spike', weights));
    t.deepEqual(variants.sort(), ['A', 'B'], profile);
  }
});

test("the oracle's A/B bucket formula agrees with downstream's assignment", (t) => {
  for (const customer of [...DEMO_CUSTOMERS.map((c) => c.id), ...Array.from({ length: 200 }, (_, i) => `cust-${i}`)]) {
    for (const w of [weights, { A: 90, B: 10 }, { A: 1, B: 2, C: 3 }]) t.is(assignedVariant('spending_spike', customer, w), assignVariant(customer, 'spending_spike', w), `${customer} ${JSON.stringify(w)}`);
  }
});

test('the e2e shape: requests of at most 5 minutes in time order, every rule fired, windows where only A, only B and both fire, everything emitted', (t) => {
  for (const seed of [7, 11]) {
    const at = anchor + seed * 17 * 60_000;
    const dataset = e2eShape(seed, at);
    t.true(dataset.items.length > 2000 && dataset.items.length < 5000, `${dataset.items.length} records`);
    t.true(dataset.batches.length >= 140, `${dataset.batches.length} requests`);
    t.deepEqual(dataset.batches.flat(), [...dataset.items], 'batches are the items, in order');
    for (const batch of dataset.batches) t.true(batch.at(-1)!.sendAt - batch[0]!.sendAt < 5 * 60_000);
    // No purchase reaches spending_spike behind the newest purchase sent before it by more than a request.
    let newest = -Infinity;
    for (const batch of dataset.batches) {
      for (const item of batch) if (item.record?.type === 'purchase' && item.record.amount !== null) t.true(item.record.event_time > newest - 5 * 60_000 - 1);
      for (const item of batch) if (item.record?.type === 'purchase' && item.record.amount !== null) newest = Math.max(newest, item.record.event_time);
    }
    t.true([...dataset.accepted.values()].every((r) => r.amount === null || Number.isInteger(r.amount)), 'whole amounts: sums are exact in any order');
    t.deepEqual([...new Set(dataset.items.map((i) => i.recordId))].length, dataset.items.length, 'record ids are unique');
    const expected = oracle([dataset], at);
    const kinds = new Set(expected.delivered.map((row) => `${row.usecase}:${row.kind}`));
    for (const kind of FLAGGED_FAULTS) t.true(kinds.has(`data_quality:${kind}`), `some record is ${kind}`);
    const spending = expected.all.filter((row) => row.usecase === 'spending_spike');
    const windows = (variant: string): Set<string> => new Set(spending.filter((row) => row.variant === variant).map((row) => `${row.customer_id}@${row.event_time}`));
    const [a, b] = [windows('A'), windows('B')];
    t.true([...a].some((w) => !b.has(w)) && [...b].some((w) => !a.has(w)) && [...a].some((w) => b.has(w)), 'windows where only A, only B, and both fire');
    const assigned = dataset.customers.map((c) => assignedVariant('spending_spike', c.id, weights));
    t.true(assigned.filter((v) => v === 'A').length >= 3 && assigned.filter((v) => v === 'B').length >= 3, assigned.join(','));
    t.true(expected.delivered.length < expected.all.length, 'the post-filter holds back the other variant');
    // The flush purchase moved the watermark past every window holding a customer's purchase.
    const lastPurchase = Math.max(...[...dataset.accepted.values()].filter((r) => r.type === 'purchase' && r.customer_id !== 'flush' && r.event_time < at).map((r) => r.event_time));
    t.true(expected.spending.watermarkAfter! > lastPurchase + 60 * 60_000);
  }
});

test('the late shape: out-of-order purchases never late within their run; the follow-up\'s purchases are all behind the first run\'s watermark and would change windows if counted', (t) => {
  for (const seed of [7, 11]) {
    const at = anchor + seed * 17 * 60_000;
    const [first, second] = lateE2eRuns(seed, at);
    t.deepEqual(lateE2eRuns(seed, at), [first, second], 'deterministic');
    checkNormalized(t, first);
    checkNormalized(t, second);
    const purchases = (d: Dataset): { time: number; sendAt: number }[] =>
      d.items.flatMap((i) => (i.record?.type === 'purchase' && i.record.amount !== null ? [{ time: i.record.event_time, sendAt: i.sendAt }] : []));
    const delayed = purchases(first).filter((p) => p.sendAt > p.time);
    t.true(delayed.length >= 10, `${delayed.length} purchases sent out of order`);
    // Out of order, yet never 10 minutes (the watermark) behind a purchase of an earlier request, nor of its own.
    let newest = -Infinity;
    for (const batch of first.batches) {
      const own = Math.max(...batch.flatMap((i) => (i.record?.type === 'purchase' && i.record.amount !== null ? [i.record.event_time] : [-Infinity])));
      for (const item of batch) if (item.record?.type === 'purchase' && item.record.amount !== null) t.true(item.record.event_time > Math.max(newest, own) - 10 * 60_000, item.line);
      newest = Math.max(newest, own);
    }
    t.true(first.items.some((item, i) => i > 0 && item.record && first.items[i - 1]!.record && item.record.event_time < first.items[i - 1]!.record!.event_time), 'some record is sent after a newer one');
    const runs = [first, second].map(accepted);
    const both = spendingRows(runs, params.spending);
    const late = second.items.filter((i) => i.record && i.record.event_time < first.anchor - 20 * 60_000);
    t.is(both.latePurchases, late.length, 'every old purchase of the follow-up is late');
    t.true(late.length >= 8);
    t.true(both.rows.some((r) => r.customer_id === 'acme' && r.event_time > first.anchor), 'the follow-up\'s on-time burst is emitted');
    // Counted as if no watermark lay between them, the late purchases change the windows: an oracle (or job) that kept them would differ.
    const together = spendingRows([[...runs[0]!, ...runs[1]!]], params.spending).rows.map((r) => r.feedback_id + r.score);
    const apart = [...spendingRows([runs[0]!], params.spending).rows, ...both.rows].map((r) => r.feedback_id + r.score);
    t.notDeepEqual(new Set(together), new Set(apart));
  }
});

test('outOfOrderMinutes that could make a purchase late is refused', (t) => {
  t.throws(() => generateDataset({ seed: 1, anchor, outOfOrderMinutes: 5 }), { instanceOf: RangeError, message: /under the 10-minute watermark/ });
  t.notThrows(() => generateLateFollowUp(generateDataset({ seed: 1, anchor }), { seed: 2 }));
});
