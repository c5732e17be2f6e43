/** RunStore on the real Redis (127.0.0.1:16379), under a key prefix of its own. */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../shared/config.ts';
import { createRedis } from '../../shared/redis.ts';
import { RunStore, type RunRecord } from '../../infra/orchestrator/run-store.ts';

const config = loadConfig(process.env);
const prefix = `test-run-store-${randomUUID().slice(0, 8)}:`;
const redis = createRedis(config, { keyPrefix: prefix });

test.after.always(async () => {
  const raw = createRedis(config);
  const keys = await raw.keys(`${prefix}*`);
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
  redis.disconnect();
});

function run(id: string, fields: Partial<RunRecord> = {}): RunRecord {
  return {
    id, function: 'customer_insights.customer_summary', usecase: 'customer_insights', version: 'v1', params: { customer_id: 'acme' }, state: 'queued', by: 'ci',
    queuedAt: new Date().toISOString(), startedAt: null, endedAt: null, session: null, result: null, error: null, timings: null, events: [{ event: 'queued', at: new Date().toISOString() }],
    ...fields,
  };
}

test.serial('a run is stored, read back and listed by function (newest first); ended runs expire after the TTL', async (t) => {
  const store = new RunStore(redis, 400);
  await store.put(run('a', { queuedAt: '2026-12-03T10:00:00.000Z' }));
  await store.put(run('b', { queuedAt: '2026-12-03T10:00:01.000Z', state: 'finished', result: { kind: 'value', value: { records: 3 } } }));
  await store.put(run('c', { function: 'other.fn' }));
  t.is((await store.get('a'))?.state, 'queued');
  t.deepEqual((await store.get('b'))?.result, { kind: 'value', value: { records: 3 } });
  t.deepEqual((await store.list('customer_insights.customer_summary')).map((r) => r.id), ['b', 'a']);
  await sleep(600);
  t.is(await store.get('b'), null, 'the finished run expired');
  t.not(await store.get('a'), null, 'a run not ended does not expire');
  t.deepEqual((await store.list('customer_insights.customer_summary')).map((r) => r.id), ['a']);
});

test.serial('after a restart, runs left queued or running are failed with a platform error, never left running', async (t) => {
  const store = new RunStore(redis, 60_000);
  await store.put(run('q'));
  await store.put(run('r', { state: 'running', startedAt: new Date().toISOString() }));
  await store.put(run('f', { state: 'finished' }));
  const restarted = new RunStore(redis, 60_000);
  const failed = await restarted.failInterrupted();
  t.deepEqual(failed.map((r) => r.id).sort(), ['a', 'c', 'q', 'r']);
  const r = await restarted.get('r');
  t.is(r?.state, 'failed');
  t.is(r?.error?.code, 'platform');
  t.regex(r?.error?.message ?? '', /while the run was running/);
  t.is(r?.events.at(-1)?.event, 'failed');
  t.is((await restarted.get('f'))?.state, 'finished');
  t.deepEqual(await restarted.failInterrupted(), [], 'nothing left to settle');
});

test.serial('recent lists the latest runs across functions, newest first, without expired ones; activeCounts counts queued and running', async (t) => {
  const own = createRedis(config, { keyPrefix: `${prefix}recent:` });
  t.teardown(() => own.disconnect());
  const store = new RunStore(own, 400);
  await store.put(run('old', { queuedAt: '2026-12-03T10:00:00.000Z', state: 'running', startedAt: '2026-12-03T10:00:00.100Z' }));
  await store.put(run('mid', { function: 'other.fn', queuedAt: '2026-12-03T10:00:01.000Z' }));
  await store.put(run('new', { queuedAt: '2026-12-03T10:00:02.000Z', state: 'finished', endedAt: '2026-12-03T10:00:03.000Z' }));
  t.deepEqual((await store.recent()).map((r) => r.id), ['new', 'mid', 'old']);
  t.deepEqual((await store.recent(2)).map((r) => r.id), ['new', 'mid']);
  t.deepEqual(await store.activeCounts(), { queued: 1, running: 1 });
  await sleep(600); // the finished run's TTL
  t.deepEqual((await store.recent()).map((r) => r.id), ['mid', 'old'], 'an expired run leaves the list');
});
