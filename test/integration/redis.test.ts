/** Redis through ioredis, with a unique key prefix per test. */
import test from 'ava';
import { createRedis } from '../../shared/redis.ts';
import { config, uniqueName } from '../support/env.ts';

test('set, get, expire and scan keys under a private prefix', async (t) => {
  const prefix = `${uniqueName('test')}:`;
  const redis = createRedis(config, { keyPrefix: prefix });
  await redis.connect();
  t.teardown(() => redis.quit());
  await redis.set('weights:data_quality', JSON.stringify({ A: 90, B: 10 }));
  await redis.set('ephemeral', '1', 'PX', 50);
  t.deepEqual(JSON.parse((await redis.get('weights:data_quality')) ?? 'null'), { A: 90, B: 10 });
  t.is(await redis.get('missing'), null);
  await new Promise((resolve) => setTimeout(resolve, 120));
  t.is(await redis.get('ephemeral'), null, 'expired key is gone');
  // keyPrefix does not apply to KEYS patterns, so spell the prefix there.
  t.deepEqual(await redis.keys(`${prefix}*`), [`${prefix}weights:data_quality`]);
});
