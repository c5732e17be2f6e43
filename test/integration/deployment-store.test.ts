/** DeploymentStore on a real Redis: metrics merge field by field; replays are read in one go. */
import test from 'ava';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { createRedis } from '../../shared/redis.ts';
import { config, uniqueName } from '../support/env.ts';

test('metrics merge without losing fields; pending replays come back by job and go when completed', async (t) => {
  const prefix = `${uniqueName('test-store')}:`;
  const redis = createRedis(config, { keyPrefix: prefix });
  await redis.connect();
  const store = new DeploymentStore(redis);
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(prefix.length)));
    redis.disconnect();
  });

  t.deepEqual(await store.jobMetrics('uc.a.A'), {});
  await store.mergeMetrics('uc.a.A', { recordsPerSecond: 120.5, lastBatchAt: 1000 });
  await store.mergeMetrics('uc.a.A', { cpu: null, memoryMb: 900, recordsPerSecond: undefined });
  t.deepEqual(await store.jobMetrics('uc.a.A'), { recordsPerSecond: 120.5, lastBatchAt: 1000, cpu: null, memoryMb: 900 });
  t.deepEqual(await store.jobMetrics('uc.b.A'), {}, 'per job');

  await store.requestReplay('uc.a.A', { since: 5, requestedAt: 6 });
  await store.requestReplay('uc.b.B', { since: 7, requestedAt: 8 });
  t.deepEqual([...(await store.pendingReplays())].sort(), [['uc.a.A', { since: 5, requestedAt: 6 }], ['uc.b.B', { since: 7, requestedAt: 8 }]]);
  await store.completeReplay('uc.a.A');
  t.deepEqual([...(await store.pendingReplays()).keys()], ['uc.b.B']);
});
