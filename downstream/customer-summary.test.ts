import test from 'ava';
import { DiamondError } from '../shared/errors.ts';
import { summaryAnswer } from './customer-summary.ts';

const failure = (fn: () => unknown): DiamondError => {
  try {
    fn();
  } catch (error) {
    if (error instanceof DiamondError) return error;
    throw error;
  }
  throw new Error('no error');
};

test('a finished run answers the function value and the run id, state and timings', (t) => {
  const value = { customer_id: 'acme', records: 3 };
  t.deepEqual(summaryAnswer({ id: 'r1', state: 'finished', result: { kind: 'value', value }, timings: { run_ms: 12 } }), { summary: value, run: { id: 'r1', state: 'finished', timings: { run_ms: 12 } } });
});

test("a failed run is 502 with its error code and message, never the user code's file", (t) => {
  const error = failure(() => summaryAnswer({ id: 'r2', state: 'failed', error: { code: 'user_code', message: 'ZeroDivisionError: division by zero', file: '/srv/usecases/customer_insights/functions.py' } as never }));
  t.is(error.status, 502);
  t.is(error.code, 'DIAMOND_SUMMARY_FAILED');
  t.regex(error.message, /user_code.*division by zero/);
  t.notRegex(`${error.message} ${error.hint}`, /functions\.py/);
  t.regex(error.hint ?? '', /r2/);
});

test("a platform failure keeps its message (about the shared session) out of the customer's answer", (t) => {
  const error = failure(() => summaryAnswer({ id: 'r3', state: 'failed', error: { code: 'platform', message: 'session s-7 died while running r9 for another customer' } }));
  t.is(error.status, 502);
  t.notRegex(error.message, /s-7|r9/);
});

test('a timed-out run is 504, retriable', (t) => {
  const error = failure(() => summaryAnswer({ id: 'r4', state: 'timed-out', error: { code: 'run_timeout', message: 'over 60 s' } }));
  t.is(error.status, 504);
  t.true(error.retriable);
});
