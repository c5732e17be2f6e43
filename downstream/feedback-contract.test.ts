import test from 'ava';
import { toCustomerRecord, toFeedback } from './feedback-contract.ts';

const minimal = { feedback_id: 'f', customer_id: 'c', usecase: 'u', variant: 'A', event_time: 10 };

test('an older writer version without the defaulted fields gets the defaults', (t) => {
  const result = toFeedback(minimal);
  t.true(result.ok);
  if (result.ok) t.deepEqual(result.value, { ...minimal, version: '', kind: '', severity: '', score: null, message: '', details: {}, record_ids: [], produced_at: 10 });
});

test('fields a newer writer added are ignored', (t) => {
  const result = toFeedback({ ...minimal, labels: ['x'], score: 0.5 });
  t.true(result.ok && !('labels' in result.value) && result.value.score === 0.5);
});

test('rows without their identity are refused, naming the fields', (t) => {
  t.deepEqual(toFeedback({ ...minimal, customer_id: '', event_time: 'x' }), { ok: false, reason: 'Feedback without valid customer_id, event_time' });
  t.false(toFeedback(null).ok);
  t.false(toFeedback([minimal]).ok);
  t.deepEqual(toCustomerRecord({ customer_id: 'c', event_time: 1 }), { ok: false, reason: 'CustomerRecord without valid record_id' });
});
