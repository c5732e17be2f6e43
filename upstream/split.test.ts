import test from 'ava';
import { isBlank, splitBody, type RawItem } from './split.ts';

const body = (text: string | Buffer): RawItem[] => splitBody(Buffer.isBuffer(text) ? text : Buffer.from(text));
const raws = (items: RawItem[]): string[] => items.map((item) => item.raw.toString('utf8'));

test('a JSON array yields one item per element, with each element\'s bytes untouched', (t) => {
  const items = body(' [ {"a": 1} ,{"b":"x,]}"} , [1,2] ]\n');
  t.deepEqual(raws(items), ['{"a": 1}', '{"b":"x,]}"}', '[1,2]']);
  t.true(items.every((item) => item.parsed));
});

test('NDJSON yields one item per non-blank line; CRLF is fine', (t) => {
  const items = body('{"a":1}\r\n\n  \n{"b":2}\n');
  t.deepEqual(raws(items), ['{"a":1}', '{"b":2}']);
});

test('a single object, even pretty-printed, is one item', (t) => {
  const items = body('{\n  "a": 1,\n  "b": [1,\n 2]\n}\n');
  t.is(items.length, 1);
  t.true(items[0]?.parsed);
});

test('a truncated array keeps its complete elements and rejects the cut one', (t) => {
  const items = body('[{"a":1},{"b":2},{"c":');
  t.deepEqual(raws(items), ['{"a":1}', '{"b":2}', '{"c":']);
  const last = items[2];
  t.true(last !== undefined && !last.parsed && /truncated/.test(last.reasons[0]?.problem ?? ''));
  const open = body('[');
  t.true(open.length === 1 && !open[0]!.parsed);
});

test('a truncated NDJSON line is a bad item; its neighbours are fine', (t) => {
  const items = body('{"a":1}\n{"b":\n{"c":3}\n');
  t.deepEqual(items.map((item) => item.parsed), [true, false, true]);
  const bad = items[1];
  t.true(bad !== undefined && !bad.parsed && /not valid JSON/.test(bad.reasons[0]?.problem ?? ''));
});

test('a body that is not JSON at all becomes bad items, one per line', (t) => {
  const items = body('hello world\nthis is not json');
  t.deepEqual(raws(items), ['hello world', 'this is not json']);
  t.true(items.every((item) => !item.parsed));
});

test('invalid UTF-8 stays in its own record, bytes kept', (t) => {
  const broken = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
  const items = body(Buffer.concat([Buffer.from('[{"ok":1},'), broken, Buffer.from(']')]));
  t.is(items.length, 2);
  t.true(items[0]?.parsed);
  const bad = items[1]!;
  t.true(!bad.parsed && bad.reasons[0]?.problem === 'is not valid UTF-8');
  t.true(bad.raw.equals(broken));
});

test('text after the closing bracket is kept as a bad item; empty elements are skipped', (t) => {
  const items = body('[{"a":1},]garbage');
  t.deepEqual(raws(items), ['{"a":1}', 'garbage']);
  t.false(items[1]?.parsed);
});

test('an empty body is blank (the server answers 400, there is nothing to keep)', (t) => {
  t.true(isBlank(Buffer.from('')));
  t.true(isBlank(Buffer.from(' \n\t')));
  t.false(isBlank(Buffer.from('x')));
  t.deepEqual(body(''), []);
});
