import test from 'ava';
import { randomBytes } from 'node:crypto';
import { CursorCodec } from './feedback-cursor.ts';

const position = { customer: 'acme', since: 1000, usecase: 'spending', eventTime: 5000, feedbackId: 'f-1' };

test('a cursor round-trips its position, customer and filters', (t) => {
  const codec = new CursorCodec(randomBytes(32));
  t.deepEqual(codec.decode(codec.encode(position)), position);
  t.deepEqual(codec.decode(codec.encode({ ...position, usecase: null })), { ...position, usecase: null });
});

test('a tampered, re-signed elsewhere or malformed cursor is refused', (t) => {
  const codec = new CursorCodec(randomBytes(32));
  const cursor = codec.encode(position);
  const [body, signature] = cursor.split('.') as [string, string];
  const otherCustomer = Buffer.from(Buffer.from(body, 'base64url').toString().replace('acme', 'globe')).toString('base64url');
  t.is(codec.decode(`${otherCustomer}.${signature}`), null);
  t.is(codec.decode(new CursorCodec(randomBytes(32)).encode({ ...position, customer: 'globex' })), null);
  for (const bad of ['', '.', 'abc', `${body}.`, `${body}.${signature}.x`, `${body}.${signature.slice(1)}`]) t.is(codec.decode(bad), null, bad);
});
