/** `diamond rollout` and `diamond customer add` through the real CLI process, against Redis (and Kafka for the rollout's event). */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomerKeys } from '../../downstream/customer-keys.ts';
import { RolloutStore } from '../../downstream/rollout-store.ts';
import { createRedis } from '../../shared/redis.ts';
import { parseLifecycleEvent } from '../../shared/messages.ts';
import { Topics } from '../../shared/topics.ts';
import { config, consumeUntil, testKafka, uniqueName, type ConsumedMessage } from '../support/env.ts';

// The CLI refuses weights for a use case it does not know: the unique one gets a folder in its own root.
const usecaseRoot = mkdtempSync(join(tmpdir(), 'diamond-cli-usecases-'));
const diamond = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, [join(config.projectRoot, 'infra', 'cli', 'bin.js'), ...args], { encoding: 'utf8', env: { ...process.env, DIAMOND_USECASE_ROOTS: usecaseRoot } });

test('rollout sets weights the writer reads; customer add prints a key that authenticates, stored hashed', async (t) => {
  // The CLI uses the real key names, so the test uses a unique use case and customer.
  const usecase = uniqueName('test-uc');
  const customer = uniqueName('test-customer');
  const unknown = diamond('rollout', usecase, 'A=90,B=10');
  t.is(unknown.status, 1, 'no folder, nothing deployed: refused');
  t.regex(unknown.stderr, new RegExp(`no use case ${usecase}`));
  mkdirSync(join(usecaseRoot, usecase));
  writeFileSync(join(usecaseRoot, usecase, 'usecase.yaml'), `name: ${usecase}\n`);
  const redis = createRedis(config);
  const keys = new CustomerKeys(redis);
  t.teardown(async () => {
    await redis.del(`rollout:${usecase}`);
    await keys.revokeAll(customer);
    redis.disconnect();
  });

  const set = diamond('rollout', usecase, 'A=90,B=10');
  t.is(set.status, 0, set.stderr);
  t.regex(set.stdout, /A buckets 0–8999, B buckets 9000–9999/);
  t.deepEqual(await new RolloutStore(redis).get(usecase), { A: 90, B: 10 });
  t.is(diamond('rollout', usecase, 'A=80,B=20').status, 0);
  t.deepEqual(await new RolloutStore(redis).get(usecase), { A: 80, B: 20 });
  // Each change is a rollout-changed event where the dashboard and `diamond events` read them.
  const kafka = testKafka();
  const ofThisUsecase = (messages: readonly ConsumedMessage[]) => messages.flatMap((m) => {
    const parsed = parseLifecycleEvent(m.value?.toString() ?? '');
    return parsed.ok && parsed.message.event === 'rollout-changed' && parsed.message.usecase === usecase ? [{ key: m.key, ...parsed.message }] : [];
  });
  const changes = ofThisUsecase(await consumeUntil(kafka, Topics.events, (messages) => ofThisUsecase(messages).length >= 2));
  t.like(changes, [
    { key: `uc.${usecase}`, job: `uc.${usecase}`, variant: '*', before: null, weights: { A: 90, B: 10 }, by: 'diamond rollout' },
    { before: { A: 90, B: 10 }, weights: { A: 80, B: 20 } },
  ]);
  const bad = diamond('rollout', usecase, 'A=ninety');
  t.is(bad.status, 1);
  t.regex(bad.stderr, /VARIANT=NUMBER/);

  const added = diamond('customer', 'add', customer);
  t.is(added.status, 0, added.stderr);
  const key = added.stdout.trim();
  t.regex(key, /^dmd_[A-Za-z0-9_-]{32}$/);
  t.is(await keys.authenticate(key), customer);
  t.is(await redis.get(`apikey:${key}`), null, 'the key itself is not stored');
});
