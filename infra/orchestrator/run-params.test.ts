import test, { type ExecutionContext } from 'ava';
import { ApiError } from '../../shared/errors.ts';
import { checkRunParams, durationMs, timestampIso, type ParamSpec } from './run-params.ts';

const now = Date.UTC(2026, 11, 3, 12, 0, 0);
const summary: Record<string, ParamSpec> = {
  customer_id: { type: 'string', required: true, default: null },
  since: { type: 'timestamp', required: false, default: '30d' },
};
const fn = 'customer_insights.customer_summary';

function refusal(t: ExecutionContext, run: () => unknown): ApiError {
  const error = t.throws(run, { instanceOf: ApiError });
  t.is(error.status, 400);
  return error;
}

test('durations: units and bare milliseconds', (t) => {
  t.is(durationMs('30s'), 30_000);
  t.is(durationMs('5m'), 300_000);
  t.is(durationMs('500ms'), 500);
  t.is(durationMs('1.5h'), 5_400_000);
  t.is(durationMs('7d'), 604_800_000);
  t.is(durationMs(250), 250);
  t.is(durationMs('1200'), 1200);
  t.is(durationMs('soon'), null);
  t.is(durationMs(-1), null);
});

test('timestamps: ISO with a zone or a date, or a duration back from now, as ISO UTC', (t) => {
  t.is(timestampIso('2026-11-01T10:00:00+01:00', now), '2026-11-01T09:00:00.000Z');
  t.is(timestampIso('2026-11-01', now), '2026-11-01T00:00:00.000Z');
  t.is(timestampIso('7d', now), '2026-11-26T12:00:00.000Z');
  t.is(timestampIso('2026-11-01T10:00:00', now), null, 'no zone: refused rather than guessed');
  t.is(timestampIso('yesterday', now), null);
});

test('params are typed, defaults applied (a timestamp default "30d" is 30 days back)', (t) => {
  t.deepEqual(checkRunParams(fn, summary, { customer_id: 'acme', since: '7d' }, now), { customer_id: 'acme', since: '2026-11-26T12:00:00.000Z' });
  t.deepEqual(checkRunParams(fn, summary, { customer_id: 'acme' }, now), { customer_id: 'acme', since: '2026-11-03T12:00:00.000Z' });
  const all: Record<string, ParamSpec> = {
    n: { type: 'int', required: true, default: null }, x: { type: 'double', required: true, default: null }, on: { type: 'bool', required: true, default: null },
    every: { type: 'duration', required: true, default: null }, note: { type: 'string', required: false, default: null },
  };
  t.deepEqual(checkRunParams('u.f', all, { n: '3', x: '2.5', on: 'true', every: '5m' }, now), { n: 3, x: 2.5, on: true, every: 300_000, note: null });
  t.deepEqual(checkRunParams('u.f', all, { n: 3, x: 2, on: false, every: 1000 }, now), { n: 3, x: 2, on: false, every: 1000, note: null });
});

test('a missing, unknown or mistyped parameter is a 400 naming it and the expected type', (t) => {
  const missing = refusal(t, () => checkRunParams(fn, summary, {}, now));
  t.regex(missing.message, /params\.customer_id is missing/);
  t.regex(missing.hint ?? '', /customer_id is string/);
  const unknown = refusal(t, () => checkRunParams(fn, summary, { customer_id: 'a', customer: 'b' }, now));
  t.regex(unknown.message, /params\.customer is not a parameter/);
  t.regex(unknown.hint ?? '', /customer_id \(string\), since \(timestamp\)/);
  const wrong = refusal(t, () => checkRunParams(fn, summary, { customer_id: 'a', since: 'last tuesday' }, now));
  t.regex(wrong.message, /params\.since is "last tuesday", not timestamp/);
  t.regex(wrong.hint ?? '', /ISO-8601/);
  t.regex(refusal(t, () => checkRunParams(fn, summary, { customer_id: 42 }, now)).message, /not string/);
  t.regex(refusal(t, () => checkRunParams('u.f', { n: { type: 'int', required: true, default: null } }, { n: 1.5 }, now)).message, /not int/);
  t.regex(refusal(t, () => checkRunParams(fn, summary, ['acme'], now)).message, /params must be a JSON object/);
});
