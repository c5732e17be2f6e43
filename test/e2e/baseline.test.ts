/**
 * The whole diamond without faults: records posted to the HTTP ingest API go through
 * data_quality and spending_spike (A and B, 50/50) to Cassandra, and feedback_by_customer
 * holds exactly the rows computed independently from the input (infra/dataset/oracle.ts).
 */
import test from 'ava';
import { SPENDING_WEIGHTS } from '../../infra/dataset/generator.ts';
import { assignedVariant } from '../../infra/dataset/oracle.ts';
import { deployExamples, e2eDataset, startDiamond } from '../support/e2e.ts';

test('every record through upstream, both use cases and downstream: exactly the expected rows', async (t) => {
  const started = Date.now();
  const d = await startDiamond(t, 'baseline');
  const ready = Date.now();
  const jobs = await deployExamples(d);
  const running = Date.now();
  const dataset = e2eDataset();
  const stream = d.stream(dataset, 150);
  await stream.done;
  const sent = Date.now();
  const { expected, delivered } = await d.settle(t, stream, { jobs: Object.values(jobs) });
  t.log(`fixture ${ready - started} ms, deploy to running ${running - ready} ms, stream ${sent - running} ms, then delivered in ${Date.now() - sent} ms`);

  // The data exercises every rule, both variants and the post-filter, so the equality above means something.
  const kinds = new Set(expected.delivered.map((row) => `${row.usecase}:${row.kind}`));
  for (const kind of ['missing_amount', 'missing_currency', 'negative_amount', 'amount_out_of_range', 'future_timestamp']) {
    t.true(kinds.has(`data_quality:${kind}`), `some record is ${kind}`);
  }
  const spending = expected.all.filter((row) => row.usecase === 'spending_spike');
  const windows = (variant: string): Set<string> => new Set(spending.filter((row) => row.variant === variant).map((row) => `${row.customer_id}@${row.event_time}`));
  const [a, b] = [windows('A'), windows('B')];
  t.true([...a].some((w) => !b.has(w)) && [...b].some((w) => !a.has(w)) && [...a].some((w) => b.has(w)), 'windows where only A, only B, and both fire');
  const assigned = dataset.customers.map((c) => assignedVariant('spending_spike', c.id, SPENDING_WEIGHTS));
  t.true(assigned.filter((v) => v === 'A').length >= 3 && assigned.filter((v) => v === 'B').length >= 3, `customers on both sides of the rollout: ${assigned.join(',')}`);
  t.true(expected.delivered.length < expected.all.length, 'the post-filter holds back the other variant');
  t.log(`${dataset.accepted.size} records (${dataset.rejected} rejected upstream) → ${expected.all.length} feedback rows, ${delivered.length} delivered`);
});
