/**
 * The watermark end to end: spending_spike (A and B) over a first run with purchases sent out
 * of order (up to 4 minutes, never late), then — once both jobs committed all of it, so their
 * watermark moved — a second run whose old purchases are behind that watermark and must be
 * dropped, an on-time burst, and a flush that closes every window. Both tables must hold
 * exactly the oracle's rows of both runs: a job that counted a late purchase writes a window
 * the oracle does not expect (or a different spend); one that emitted a window twice, or
 * before the watermark passed it, fails the same comparison.
 */
import test from 'ava';
import { lateE2eRuns } from '../../infra/dataset/generator.ts';
import { deployExamples, startDiamond } from '../support/e2e.ts';
import { settleRuns, waitForCommitted } from '../support/e2e-late.ts';

test('late purchases (behind the watermark of committed batches) are dropped; out-of-order ones count; every window once', async (t) => {
  const d = await startDiamond(t, 'late-records');
  const jobs = await deployExamples(d);
  const [first, second] = lateE2eRuns(7, Date.now());
  await d.stream(first, 150).done;
  // Time window: the jobs must commit the first run within 4 minutes, or the late run cannot be late.
  const ends = await waitForCommitted(d, [jobs.spendingA, jobs.spendingB]);
  t.log(`first run committed by both spending jobs at ${JSON.stringify(ends)}; sending the late run`);
  await d.stream(second, 150).done;
  const { spending } = await settleRuns(t, d, [first, second], Object.values(jobs));
  const [, late] = spending;
  t.is(late!.latePurchases, second.items.filter((i) => i.record && i.record.event_time <= late!.watermarkBefore!).length, 'the oracle drops exactly the old purchases');
  t.true(late!.latePurchases >= 8, `${late!.latePurchases} late purchases were sent`);
  t.true(late!.rows.some((row) => row.customer_id === 'acme' && row.event_time > first.anchor), 'the on-time burst after the late purchases was emitted');
});
