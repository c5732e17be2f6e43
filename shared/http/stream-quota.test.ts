import test from 'ava';
import { ApiError } from '../errors.ts';
import { StreamQuota } from './stream-quota.ts';

test('a client gets at most perClient streams; a release (even twice) frees exactly one; clients are apart', (t) => {
  const quota = new StreamQuota(2, 'close one');
  const a1 = quota.acquire('a');
  quota.acquire('a');
  const refused = t.throws(() => quota.acquire('a'), { instanceOf: ApiError });
  t.is(refused?.code, 'DIAMOND_STREAM_LIMIT');
  t.is(refused?.headers['retry-after'], '5');
  t.notThrows(() => quota.acquire('b'), 'another client is counted apart');
  a1();
  a1();
  t.is(quota.openFor('a'), 1);
  t.notThrows(() => quota.acquire('a'));
  t.throws(() => quota.acquire('a'));
});
