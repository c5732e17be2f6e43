import test from 'ava';
import { assignVariant, bucketOf, bucketRanges, BUCKETS, InvalidWeightsError, parseWeights, variantForBucket } from './assign-variant.ts';

const customers = Array.from({ length: 20_000 }, (_, i) => `customer-${i}`);

test('bucket is stable, in range, and depends on the use case', (t) => {
  const buckets = customers.map((c) => bucketOf(c, 'spending'));
  t.true(buckets.every((b) => Number.isInteger(b) && b >= 0 && b < BUCKETS));
  const other = customers.map((c) => bucketOf(c, 'fraud'));
  t.true(buckets.filter((b, i) => b !== other[i]).length > customers.length * 0.9);
  // Pinned value: a change of the hash would silently reshuffle every customer.
  t.deepEqual(['acme', 'globex', 'initech'].map((c) => bucketOf(c, 'spending')), [7857, 287, 4630]);
});

test('weights cut the buckets into consecutive slices in variant order', (t) => {
  t.deepEqual(bucketRanges({ A: 90, B: 10 }), [{ variant: 'A', from: 0, to: 9000 }, { variant: 'B', from: 9000, to: 10_000 }]);
  t.deepEqual(bucketRanges({ B: 1, A: 3 }), [{ variant: 'A', from: 0, to: 7500 }, { variant: 'B', from: 7500, to: 10_000 }]);
  t.is(variantForBucket(8999, { A: 90, B: 10 }), 'A');
  t.is(variantForBucket(9000, { A: 90, B: 10 }), 'B');
  t.is(variantForBucket(0, { A: 0, B: 100 }), 'B');
});

test('shares roughly follow the weights', (t) => {
  const assigned = customers.map((c) => assignVariant(c, 'spending', { A: 90, B: 10 }));
  const shareB = assigned.filter((v) => v === 'B').length / customers.length;
  t.true(shareB > 0.08 && shareB < 0.12, `B share ${shareB}`);
});

test('raising B only moves customers from A to B, exactly those in the moved buckets', (t) => {
  const steps = [{ A: 100, B: 0 }, { A: 90, B: 10 }, { A: 50, B: 50 }, { A: 0, B: 100 }];
  for (let i = 1; i < steps.length; i++) {
    const before = steps[i - 1]!;
    const after = steps[i]!;
    for (const customer of customers) {
      const was = assignVariant(customer, 'spending', before);
      const now = assignVariant(customer, 'spending', after);
      const bucket = bucketOf(customer, 'spending');
      const inMovedSlice = bucket >= after.A * 100 && bucket < before.A * 100;
      if (inMovedSlice) t.true(was === 'A' && now === 'B', `${customer} bucket ${bucket}`);
      else if (was !== now) t.fail(`${customer} moved ${was} → ${now} outside the moved slice`);
    }
  }
  t.pass();
});

test('parseWeights reads A=90,B=10 and names what is wrong', (t) => {
  t.deepEqual(parseWeights('A=90,B=10'), { A: 90, B: 10 });
  t.deepEqual(parseWeights(' A=1 , B=2.5 '), { A: 1, B: 2.5 });
  for (const bad of ['', 'A', 'A=-1', 'A=x', 'A=0,B=0', 'A=1,A=2', 'A B=1']) {
    t.throws(() => parseWeights(bad), { instanceOf: InvalidWeightsError }, bad);
  }
});
