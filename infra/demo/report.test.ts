import test from 'ava';
import type { Feedback } from '../../shared/schemas.ts';
import { DEMO_CUSTOMERS } from '../dataset/generator.ts';
import { ofRun } from './feedback-watch.ts';
import { problemKind } from './rejected-records.ts';
import { customerLines, orderForDisplay, rejectedLines } from './report.ts';

const feedback = (usecase: string, severity: string, eventTime: number, recordIds: string[] = ['demo-abc-00001']): Feedback => ({
  feedback_id: `${usecase}-${eventTime}`, customer_id: 'acme', usecase, variant: 'A', version: 'v', kind: usecase === 'spending_spike' ? 'spending_spike' : 'missing_amount',
  severity, score: null, message: `${usecase} at ${eventTime}`, details: {}, record_ids: recordIds, event_time: eventTime, produced_at: eventTime,
});

test('feedback is shown spikes first, then by severity, then oldest first', (t) => {
  const items = [feedback('data_quality', 'warning', 1), feedback('data_quality', 'critical', 3), feedback('spending_spike', 'warning', 2)];
  t.deepEqual(orderForDisplay(items).map((f) => f.event_time), [2, 3, 1]);
});

test("a customer's lines: header with its variant and counts, at most five rows, earlier spikes only when this run has none", (t) => {
  const acme = DEMO_CUSTOMERS.find((c) => c.id === 'acme')!;
  const many = Array.from({ length: 7 }, (_, i) => feedback('data_quality', 'warning', i));
  const lines = customerLines(acme, 'B', many);
  t.regex(lines[0]!, /acme — six large purchases .* variant B: 7 item\(s\), 0 spending spike\(s\)/);
  t.is(lines.length, 1 + 5 + 1);
  t.is(lines.at(-1), '    … and 2 more');
  const withEarlier = customerLines(acme, 'B', many.slice(0, 1), [feedback('spending_spike', 'critical', 9, ['demo-old-00001'])]);
  t.true(withEarlier[1]!.endsWith('(earlier run)'));
  t.deepEqual(customerLines(acme, null, []).slice(1), ['    (nothing for this run)']);
});

test("a row is this run's when one of its records carries the run's tag", (t) => {
  t.true(ofRun('demo-abc')(feedback('spending_spike', 'warning', 1, ['demo-old-00001', 'demo-abc-00002'])));
  t.false(ofRun('demo-abc')(feedback('spending_spike', 'warning', 1, ['demo-abcd-00001'])));
});

test('rejected records are grouped by their first reason, without the specific values', (t) => {
  t.is(problemKind({ reasons: [{ field: '(record)', problem: 'is not valid JSON (Unexpected end of JSON input)' }] }), '(record): is not valid JSON');
  t.is(problemKind({ reasons: [{ field: 'amount', problem: 'expected a number or text like "1,234.56", got boolean true' }] }), 'amount: expected a number or text like "1,234.56"');
  t.is(problemKind({ reasons: [] }), 'unknown');
  const envelope = { source: 'demo-shop', received_at: '2026-11-22T14:00:00.000Z', via: 'http' as const, location: { index: 3 }, reasons: [{ field: '(record)', problem: 'is not valid JSON' }], raw: '{"a":', raw_encoding: 'utf-8' as const };
  const lines = rejectedLines({ topic: 'records.rejected', count: 1, byProblem: { '(record): is not valid JSON': 1 }, examples: [envelope] }, 1);
  t.regex(lines[0]!, /1 of the 1 records .* records\.rejected/);
  t.true(lines.some((l) => l.includes('raw:    {"a":')));
  t.true(lines.some((l) => l.includes('reason: (record) is not valid JSON')));
});
