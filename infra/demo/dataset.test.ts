import test from 'ava';
import { assignVariant } from '../../downstream/index.ts';
import { normalizeRecord, resolveMapping } from '../../upstream/index.ts';
import { datasetCounts, DEMO_CUSTOMERS, FLAGGED_FAULTS, generateDataset, REJECTED_FAULTS, type Profile } from './dataset.ts';
import { expectedFeedback, readDemoParams } from './expected-feedback.ts';

const anchor = Date.parse('2026-11-22T14:07:31Z');
const params = readDemoParams(new URL('../..', import.meta.url).pathname);
const weights = { A: 50, B: 50 };
const visibleTo = (usecase: string, customer: string, variant: string): boolean => usecase !== 'spending_spike' || assignVariant(customer, usecase, weights) === variant;

test('the same seed and anchor give the same records, byte for byte; another seed does not', (t) => {
  const one = generateDataset({ seed: 7, anchor });
  t.deepEqual(generateDataset({ seed: 7, anchor }), one);
  t.notDeepEqual(generateDataset({ seed: 8, anchor }).items.map((i) => i.line), one.items.map((i) => i.line));
  t.regex(one.tag, /^demo-[0-9a-z]+$/);
  t.true(one.items.every((i, n) => i.line.includes(`${one.tag}-${String(n + 1).padStart(5, '0')}`)), 'record ids follow the send order');
});

test('upstream accepts exactly the records the dataset says it accepts, and normalizes them as predicted', (t) => {
  const dataset = generateDataset({ seed: 7, anchor });
  const mapping = resolveMapping({});
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
      t.deepEqual({ record_id, customer_id, event_time, type, amount, currency }, item.record);
    }
  }
});

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
      const { rows, visible, spending } = expectedFeedback([dataset], params, visibleTo, at);
      t.is(spending.latePurchases, 0);
      for (const customer of DEMO_CUSTOMERS) {
        const flaggedBy = (variant: string): boolean => rows.some((r) => r.usecase === 'spending_spike' && r.customerId === customer.id && r.variant === variant);
        t.deepEqual({ A: flaggedBy('A'), B: flaggedBy('B') }, expected[customer.profile], `${customer.id} (${customer.profile}), seed ${seed}, anchor ${new Date(at).toISOString()}`);
      }
      const seen = new Set(visible.filter((r) => r.usecase === 'spending_spike').map((r) => r.variant));
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
