/**
 * Everything the platform is told survives a restart and a kill -9 of Redis. The test runs
 * its own Redis, started by the same launcher `diamond services up` uses (so it proves the
 * launcher's settings, not a hand-made command line), on a free port with its own data dir,
 * and writes through the platform's real stores.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { CustomerKeys } from '../../downstream/customer-keys.ts';
import { CursorCodec } from '../../downstream/feedback-cursor.ts';
import { RolloutStore } from '../../downstream/rollout-store.ts';
import { assignVariant } from '../../downstream/assign-variant.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { isAlive, readPidRecord } from '../../shared/process-group.ts';
import { servicePaths } from '../../infra/services/service.ts';
import { freePort } from '../support/env.ts';

interface Told {
  readonly token: string;
  readonly customerKey: string;
  readonly cursorProbe: string;
}

/** Writes one of each kind of state through the stores the platform uses. */
async function tell(config: DiamondConfig): Promise<Told> {
  const redis = createRedis(config, { keyPrefix: 'diamond:orchestrator:' });
  const plain = createRedis(config);
  await redis.connect();
  await plain.connect();
  try {
    const store = new DeploymentStore(redis);
    await store.putDeployment({ usecase: 'data_quality', variant: 'A', folder: 'usecases/data_quality', version: 'v-1' });
    await store.putJob({
      jobId: 'uc.data_quality.A', usecase: 'data_quality', variant: 'A', state: 'running', generation: 1, current: null, next: null,
      retiring: [], restarts: 2, crashes: [], nextStartAt: null, lastError: null, lastLogFile: null, updatedAt: Date.now(),
    });
    const token = await new TokenStore(redis).add('deployer', 'ci');
    const customerKey = await new CustomerKeys(plain).add('acme');
    await new RolloutStore(plain).set('spending_spike', { A: 50, B: 50 });
    const cursorProbe = (await CursorCodec.fromRedis(plain)).encode({ customer: 'acme', since: 0, usecase: null, eventTime: 1, feedbackId: 'f' });
    return { token, customerKey, cursorProbe };
  } finally {
    await redis.quit();
    await plain.quit();
  }
}

/** Reads everything back; each assertion names what would have been forgotten. */
async function recall(t: ExecutionContext, config: DiamondConfig, told: Told, when: string): Promise<void> {
  const redis = createRedis(config, { keyPrefix: 'diamond:orchestrator:' });
  const plain = createRedis(config);
  await redis.connect();
  await plain.connect();
  try {
    const store = new DeploymentStore(redis);
    t.is((await store.getDeployment('data_quality', 'A'))?.version, 'v-1', `deployment kept after ${when}`);
    t.is((await store.getJob('uc.data_quality.A'))?.restarts, 2, `job record kept after ${when}`);
    t.is((await new TokenStore(redis).verify(told.token))?.role, 'deployer', `token kept after ${when}`);
    t.is(await new CustomerKeys(plain).authenticate(told.customerKey), 'acme', `customer key kept after ${when}`);
    const weights = await new RolloutStore(plain).get('spending_spike');
    t.deepEqual(weights, { A: 50, B: 50 }, `rollout weights kept after ${when}`);
    // One variant per customer, as the writer decides it: needs the weights above.
    t.truthy(weights && ['A', 'B'].includes(assignVariant('acme', 'spending_spike', weights) ?? ''), `one variant for acme after ${when}`);
    t.not((await CursorCodec.fromRedis(plain)).decode(told.cursorProbe), null, `cursor secret kept after ${when} (old cursors still verify)`);
  } finally {
    await redis.quit();
    await plain.quit();
  }
}

/** Without the password nothing is read or written; the password is in a 0600 file and not on redis-server's command line. */
async function assertLocked(t: ExecutionContext, config: DiamondConfig): Promise<void> {
  const stranger = new Redis(config.redis.url, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  stranger.on('error', () => undefined);
  try {
    await stranger.connect();
    await t.throwsAsync(stranger.set('diamond:tokens:forged', 'admin'), { message: /NOAUTH/ }, 'a client without the password cannot write');
    await t.throwsAsync(stranger.get('diamond:tokens:forged'), { message: /NOAUTH/ }, 'nor read');
  } finally {
    stranger.disconnect();
  }
  t.is(statSync(config.redis.passwordFile).mode & 0o777, 0o600, 'the password file is private');
  const password = readFileSync(config.redis.passwordFile, 'utf8').trim();
  t.true(password.length >= 32);
  const pid = readPidRecord(servicePaths(config, 'redis').pidFile)?.pid;
  if (pid !== undefined) t.false(readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(password), 'the password is not on the command line');
}

/** A config whose Redis is this test's own (free port, temp home), stopped and deleted at the end. */
async function privateRedis(t: ExecutionContext): Promise<DiamondConfig> {
  const home = mkdtempSync(join(tmpdir(), 'diamond-redis-'));
  const config = loadConfig({ ...process.env, DIAMOND_HOME: home, DIAMOND_REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  t.teardown(async () => {
    await servicesDown(config, { only: ['redis'] });
    rmSync(home, { recursive: true, force: true });
  });
  return config;
}

test('the launcher runs Redis durable: state survives a stop/start and a kill -9', async (t) => {
  const config = await privateRedis(t);
  const logger = createLogger(config);
  const [first] = await servicesUp(config, logger, { only: ['redis'] });
  t.is(first?.outcome, 'started');

  const probe = createRedis(config);
  await probe.connect();
  t.deepEqual(await probe.config('GET', 'appendonly'), ['appendonly', 'yes']);
  t.deepEqual(await probe.config('GET', 'appendfsync'), ['appendfsync', 'everysec']);
  await probe.quit();
  await assertLocked(t, config);

  const told = await tell(config);

  // down/up: a graceful stop, as `diamond down` does.
  await servicesDown(config, { only: ['redis'] });
  await servicesUp(config, logger, { only: ['redis'] });
  await recall(t, config, told, 'a stop and start');

  // kill -9: no chance to save anything on the way out.
  const pid = readPidRecord(servicePaths(config, 'redis').pidFile)?.pid;
  if (pid === undefined) throw new Error('redis pid file missing');
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100);
  t.false(isAlive(pid), 'the kill took effect');
  const [again] = await servicesUp(config, logger, { only: ['redis'] });
  t.is(again?.outcome, 'started', 'a new Redis process was started');
  await recall(t, config, told, 'kill -9');
});

/** A private Redis started by `up`, and a client of it. */
async function upWithClient(t: ExecutionContext): Promise<{ config: DiamondConfig; logger: Logger; client: Redis }> {
  const config = await privateRedis(t);
  const logger = createLogger(config);
  await servicesUp(config, logger, { only: ['redis'] });
  const client = createRedis(config);
  await client.connect();
  t.teardown(() => client.disconnect());
  return { config, logger, client };
}

test('an instance started without the AOF is made durable in place by `up`', async (t) => {
  const { config, logger, client } = await upWithClient(t);
  await client.config('SET', 'appendonly', 'no'); // as the first wave's launcher left it
  const steps: string[] = [];
  const [result] = await servicesUp(config, logger, { only: ['redis'], onStep: (_service, message) => steps.push(message) });
  t.is(result?.outcome, 'reused');
  t.deepEqual(await client.config('GET', 'appendonly'), ['appendonly', 'yes']);
  t.true(steps.some((step) => step.includes('appendonly=yes')), steps.join('\n'));
});

test('an instance started without a password is made to require one in place by `up`', async (t) => {
  const { config, logger, client } = await upWithClient(t);
  // As the earlier launcher left it: no password, no password file.
  await client.config('SET', 'requirepass', '');
  rmSync(config.redis.passwordFile);
  const steps: string[] = [];
  const [result] = await servicesUp(config, logger, { only: ['redis'], onStep: (_service, message) => steps.push(message) });
  t.is(result?.outcome, 'reused');
  t.true(steps.some((step) => step.includes('requires the password')), steps.join('\n'));
  t.false(steps.some((step) => step.includes(readFileSync(config.redis.passwordFile, 'utf8').trim())), 'the step does not print the password');
  await assertLocked(t, config);
  const fresh = createRedis(config);
  await fresh.connect();
  t.is(await fresh.ping(), 'PONG', 'the platform\'s clients read the new password from the file');
  fresh.disconnect();
});
