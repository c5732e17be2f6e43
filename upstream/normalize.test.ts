import test from 'ava';
import { readAmount, readEventTime, readId } from './fields.ts';
import { resolveMapping } from './mapping.ts';
import { normalizeRecord, stableRecordId, type NormalizeResult, type Reason } from './normalize.ts';

const ingestedAt = Date.UTC(2026, 10, 22, 10, 0, 0);
const context = { source: 'shop', mapping: resolveMapping(), ingestedAt };
const good = { customer_id: ' ACME-1 ', event_time: '2026-11-01T12:00:00Z', type: 'Purchase', amount: '1,234.56', currency: 'eur' };

function reasonsOf(result: NormalizeResult): readonly Reason[] {
  if (result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result.record)}`);
  return result.reasons;
}

test('a good record is normalized: ids trimmed and case-folded, time in UTC millis, amount a number', (t) => {
  const result = normalizeRecord({ ...good, channel: 'web', qty: 3, tags: ['a'] }, context);
  t.true(result.ok);
  if (!result.ok) return;
  t.like(result.record, {
    customer_id: 'acme-1', source: 'shop', event_time: Date.UTC(2026, 10, 1, 12), type: 'purchase',
    amount: 1234.56, currency: 'EUR', ingested_at: ingestedAt,
  });
  t.deepEqual(result.record.attributes, { channel: 'web', qty: '3', tags: '["a"]' });
  t.regex(result.record.record_id, /^h-[0-9a-f]{32}$/);
});

test('record_id comes from the source when given, else from a stable hash of the content', (t) => {
  const given = normalizeRecord({ ...good, record_id: ' R-17 ' }, context);
  t.true(given.ok && given.record.record_id === 'r-17');
  const a = normalizeRecord({ ...good, x: 1 }, context);
  const b = normalizeRecord({ x: 1, ...good }, { ...context, ingestedAt: ingestedAt + 5000 });
  t.true(a.ok && b.ok && a.record.record_id === b.record.record_id, 'key order and ingest time do not change the id');
  const c = normalizeRecord({ ...good, x: 2 }, context);
  t.true(a.ok && c.ok && a.record.record_id !== c.record.record_id);
  t.not(stableRecordId('shop', good), stableRecordId('other', good), 'the source is part of the id');
});

test('the mapping renames fields, fills defaults and keeps unknown fields as attributes', (t) => {
  const mapping = resolveMapping({ rename: { kunde: 'customer_id', betrag: 'amount' }, defaults: { type: 'purchase' }, decimal: 'comma' });
  const result = normalizeRecord({ kunde: 'K1', ts: 1_700_000_000, betrag: '1.234,5', filiale: 'Berlin' }, { ...context, mapping });
  t.true(result.ok);
  if (!result.ok) return;
  t.like(result.record, { customer_id: 'k1', type: 'purchase', amount: 1234.5, event_time: 1_700_000_000_000 });
  t.deepEqual(result.record.attributes, { filiale: 'Berlin' });
});

test('cust_id is customer_id by default; the same field given twice is a reason', (t) => {
  t.true(normalizeRecord({ ...good, customer_id: undefined, cust_id: 'c9' }, context).ok);
  t.deepEqual(reasonsOf(normalizeRecord({ ...good, cust_id: 'other' }, context)), [{ field: 'customer_id', problem: 'is given twice (as customer_id and cust_id)' }]);
});

test('a nested attributes object is flattened into attributes', (t) => {
  const result = normalizeRecord({ ...good, attributes: { channel: 'app', n: 2, gone: null } }, context);
  t.true(result.ok && result.record.attributes['channel'] === 'app' && result.record.attributes['n'] === '2' && !('gone' in result.record.attributes));
});

test('timestamps: ISO-8601 with offsets, epoch seconds, epoch millis, numeric text → UTC millis', (t) => {
  const cases: [unknown, number][] = [
    ['2026-11-01T12:00:00Z', Date.UTC(2026, 10, 1, 12)],
    ['2026-11-01T13:30:00+01:30', Date.UTC(2026, 10, 1, 12)],
    ['2026-11-01T07:00:00-0500', Date.UTC(2026, 10, 1, 12)],
    ['2026-11-01 12:00:00.250', Date.UTC(2026, 10, 1, 12, 0, 0, 250)],
    ['2026-11-01', Date.UTC(2026, 10, 1)],
    [1_761_998_400, 1_761_998_400_000],
    [1_761_998_400_123, 1_761_998_400_123],
    ['1761998400', 1_761_998_400_000],
    [1_761_998_400.5, 1_761_998_400_500],
  ];
  for (const [input, expected] of cases) t.deepEqual(readEventTime(input, 'auto'), { ok: true, value: expected }, String(input));
  t.deepEqual(readEventTime(1_761_998_400_123, 'epoch-millis'), { ok: true, value: 1_761_998_400_123 });
  t.false(readEventTime('2026-11-01', 'epoch-seconds').ok);
  t.false(readEventTime(1_761_998_400, 'iso').ok);
});

test('timestamps in year 0 or 9999, impossible dates and wrong types are rejected with the reason', (t) => {
  const problems: [unknown, RegExp][] = [
    ['0000-01-01T00:00:00Z', /year 0;/],
    ['9999-12-31T23:59:59Z', /year 9999;/],
    [253_402_300_799_000, /year 9999/],
    [-62_135_596_800, /year 1;|year 0;|year 1 /],
    ['2026-02-30T00:00:00Z', /not a valid calendar date/],
    ['2026-11-01T25:00:00Z', /not a valid calendar date/],
    ['yesterday', /expected an ISO-8601 time/],
    [true, /expected an ISO-8601 time or epoch/],
    [{ at: 1 }, /got an object/],
  ];
  for (const [input, pattern] of problems) {
    const result = readEventTime(input, 'auto');
    t.false(result.ok, String(input));
    if (!result.ok) t.regex(result.problem, pattern, String(input));
  }
});

test('amounts: "1,234.56" and "1.234,56" are numbers, currency in the text is kept', (t) => {
  const cases: [unknown, number | null, string | null][] = [
    ['1,234.56', 1234.56, null], ['1.234,56', 1234.56, null], ['1 234,56', 1234.56, null], ["1'234.56", 1234.56, null],
    ['1,234,567', 1_234_567, null], ['1.234.567,8', 1_234_567.8, null], ['12,5', 12.5, null], ['-3.10', -3.1, null],
    ['EUR 1.234,56', 1234.56, 'EUR'], ['1,234.56 usd', 1234.56, 'USD'], ['€12', 12, 'EUR'], ['$0.99', 0.99, 'USD'],
    [42, 42, null], [null, null, null], ['', null, null],
  ];
  for (const [input, amount, currency] of cases) t.deepEqual(readAmount(input, 'auto'), { ok: true, value: { amount, currency } }, String(input));
  t.deepEqual(readAmount('1.234', 'comma'), { ok: true, value: { amount: 1234, currency: null } });
  t.deepEqual(readAmount('1,234', 'dot'), { ok: true, value: { amount: 1234, currency: null } });
});

test('amounts that are ambiguous, malformed or of the wrong type are rejected', (t) => {
  const problems: [unknown, RegExp][] = [
    ['1,234', /ambiguous/], ['1,23,4', /not an amount/], ['12xy', /not an amount/], ['1.2.3,4,5', /not an amount/],
    [true, /expected a number or text/], [{ v: 1 }, /got an object/], [Number.POSITIVE_INFINITY, /not a plausible amount/], ['9'.repeat(20), /not a plausible/],
  ];
  for (const [input, pattern] of problems) {
    const result = readAmount(input, 'auto');
    t.false(result.ok, String(input));
    if (!result.ok) t.regex(result.problem, pattern, String(input));
  }
});

test('ids: trimmed, NFKC, case-folded; numbers allowed; empty or wrong types rejected', (t) => {
  t.deepEqual(readId('  ÄBC-Ｘ ', 256), { ok: true, value: 'äbc-x' });
  t.deepEqual(readId(12345, 256), { ok: true, value: '12345' });
  t.deepEqual(readId('   ', 256), { ok: false, problem: 'is empty' });
  t.false(readId(true, 256).ok);
  t.false(readId('x'.repeat(300), 256).ok);
});

test('missing customer: every reason is reported, not just the first', (t) => {
  const reasons = reasonsOf(normalizeRecord({ event_time: 'soon', amount: 'lots', currency: 'euro' }, context));
  t.deepEqual(reasons.map((reason) => reason.field), ['customer_id', 'event_time', 'type', 'amount', 'currency']);
  t.is(reasons[0]?.problem, 'is missing');
});

test('wrong types name the field and the type that arrived', (t) => {
  const reasons = reasonsOf(normalizeRecord({ customer_id: { id: 1 }, event_time: [2026], type: 7, amount: false }, context));
  t.deepEqual(reasons, [
    { field: 'customer_id', problem: 'expected a string or number, got an object' },
    { field: 'event_time', problem: 'expected an ISO-8601 time or epoch seconds/millis, got an array' },
    { field: 'type', problem: 'expected text such as "purchase", got number 7' },
    { field: 'amount', problem: 'expected a number or text like "1,234.56", got boolean false' },
  ]);
});

test('a 10 MB field is rejected, not truncated and not a crash', (t) => {
  const reasons = reasonsOf(normalizeRecord({ ...good, note: 'x'.repeat(10 * 1024 * 1024) }, context));
  t.deepEqual(reasons, [{ field: 'note', problem: `is ${10 * 1024 * 1024} characters long; at most 65536 are allowed` }]);
  t.false(normalizeRecord({ ...good, customer_id: 'c'.repeat(10 * 1024 * 1024) }, context).ok);
});

test('something that is not an object is rejected as a whole', (t) => {
  for (const input of [null, 42, 'text', [good], true]) {
    t.is(reasonsOf(normalizeRecord(input, context))[0]?.field, '(record)');
  }
});

test('a currency that disagrees with the one written in the amount is a reason', (t) => {
  t.deepEqual(reasonsOf(normalizeRecord({ ...good, amount: 'USD 5', currency: 'EUR' }, context)), [
    { field: 'currency', problem: 'EUR disagrees with the currency written in amount (USD)' },
  ]);
});
