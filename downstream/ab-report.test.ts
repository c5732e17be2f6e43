import test from 'ava';
import { compareVariants, type VariantRow } from './ab-report.ts';

const row = (variant: string, customer_id: string, kind: string, record: string, latency = 100): VariantRow =>
  ({ variant, customer_id, kind, record_ids: [record], event_time: 1000, produced_at: 1000 + latency, written_at: 1000 + latency + 10 });

test('per variant: rows, customers, rows per customer, latency; agreement on the same records', (t) => {
  const report = compareVariants('spending', 7, [
    row('A', 'c1', 'spike', 'r1'), row('A', 'c1', 'spike', 'r2'), row('A', 'c2', 'spike', 'r3'), row('A', 'c2', 'missing', 'r4'),
    row('B', 'c1', 'spike', 'r1', 300), row('B', 'c2', 'spike', 'r3', 300), row('B', 'c3', 'spike', 'r9', 300),
  ]);
  t.deepEqual(report.variants.map((v) => [v.variant, v.rows, v.customers, v.rowsPerCustomer]), [['A', 4, 2, 2], ['B', 3, 3, 1]]);
  t.is(report.variants[1]!.produceLatencyMs.p50, 300);
  t.is(report.variants[0]!.writeLatencyMs.p99, 10);
  t.deepEqual(report.agreement, [{ variants: ['A', 'B'], ratio: 2 / 5, both: 2, either: 5 }]);
});

test('one variant: no pairs to compare', (t) => {
  const report = compareVariants('solo', 1, [row('A', 'c1', 'spike', 'r1')]);
  t.is(report.variants.length, 1);
  t.deepEqual(report.agreement, []);
});
