/**
 * The orchestrator control API on the real Redis and Kafka: an isolated key prefix, job
 * prefix and topics, the API on a free port, no reconcile loop and no Spark. Tokens, roles,
 * deploy/undeploy (with the real validation of usecases/data_quality), logs, lifecycle
 * events over SSE (live and replayed), A/B refusals, and the CLI against it.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Producer } from 'kafkajs';
import { startDownstream } from '../../downstream/service.ts';
import { createCassandra } from '../../shared/cassandra.ts';
import { loadConfig } from '../../shared/config.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis, redisPassword } from '../../shared/redis.ts';
import { ControlClient, SseParser, type SseMessage } from '../../infra/cli/control-client.ts';
import { startControlApi, type ControlApi } from '../../infra/orchestrator/control-api.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { EventPublisher } from '../../infra/orchestrator/events.ts';
import { commitJobOffsets } from '../../infra/orchestrator/offsets.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';
import type { JobRecord } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { config, testKafka, uniqueKeyspace, uniqueName } from '../support/env.ts';

const options = isolatedOrchestratorOptions('control');
const logger = createLogger({ logLevel: process.env['DIAMOND_LOG_LEVEL'] === 'debug' ? 'debug' : 'error' }, { fd: 2 });
const kafka = testKafka();
const admin = kafka.admin();
const redis = createRedis(config, { keyPrefix: options.keyPrefix });
const store = new DeploymentStore(redis);
const tokenStore = new TokenStore(redis);
let producer: Producer;
let publisher: EventPublisher;
let api: ControlApi;
const extraApis: ControlApi[] = [];
const token = { viewer: '', deployer: '', admin: '' };

test.before(async () => {
  await admin.connect();
  await ensureTopics(admin, [{ topic: options.topics.input, partitions: 2 }]);
  await redis.connect();
  producer = kafka.producer();
  await producer.connect();
  publisher = new EventPublisher(producer, options.topics.events);
  api = await startControlApi(config, { options, logger, endpoints: platformEndpoints(config) }, { port: 0, heartbeatMs: 200 });
  token.viewer = await tokenStore.add('viewer', 'test-viewer');
  token.deployer = await tokenStore.add('deployer', 'test-deployer');
  token.admin = await tokenStore.add('admin', 'test-admin');
});

test.after.always(async () => {
  await Promise.all([api?.close(), ...extraApis.map((extra) => extra.close())]);
  const raw = new Redis(config.redis.url, { password: redisPassword(config) });
  const keys = await raw.keys(`${options.keyPrefix}*`);
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
  redis.disconnect();
  await producer?.disconnect();
  await admin.deleteTopics({ topics: [options.topics.input, options.topics.events] }).catch(() => undefined);
  await admin.disconnect();
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

async function call(method: string, path: string, bearer: string | null, body?: unknown, base = api.url): Promise<Answer> {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/**
 * Lifecycle events of `path` until `done` holds or the stream ends. `onOpen` runs once the
 * answer started: the API took its offsets by then, so what it publishes is delivered.
 */
async function readEvents(
  path: string,
  done: (events: Record<string, unknown>[]) => boolean,
  { onOpen, timeoutMs = 30_000 }: { onOpen?: () => Promise<void>; timeoutMs?: number } = {},
): Promise<{ events: Record<string, unknown>[]; all: SseMessage[] }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const events: Record<string, unknown>[] = [];
  const all: SseMessage[] = [];
  const parser = new SseParser();
  const decoder = new TextDecoder();
  try {
    const chunks = await new ControlClient(api.url, token.viewer).stream(path, controller.signal);
    await onOpen?.();
    reading: for await (const chunk of chunks) {
      for (const message of parser.push(decoder.decode(chunk, { stream: true }))) {
        all.push(message);
        if (message.event === 'lifecycle') events.push(JSON.parse(message.data) as Record<string, unknown>);
        if (done(events)) break reading;
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    throw new Error(`events of ${path} did not arrive in ${timeoutMs} ms; got ${JSON.stringify(events)}`);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { events, all };
}

const publish = (job: string, event: 'starting' | 'running' | 'failed' = 'running', extra: Record<string, unknown> = {}): Promise<void> =>
  publisher.publish(event, { job, usecase: 'probe', variant: 'A', version: 'v1', ...extra });

// Serial: the events tests read "the latest N" of a topic the deploy tests also write to.

test.serial('livez, readyz and healthz need no token; /v1 calls without a token or with an unknown one are 401 with a Bearer challenge', async (t) => {
  t.deepEqual((await call('GET', '/livez', null)).body, { status: 'ok' });
  t.deepEqual((await call('GET', '/readyz', null)).body, { status: 'ok', redis: 'ok' });
  t.is((await call('GET', '/healthz', null)).status, 200, 'the alias of /readyz');
  const missing = await call('GET', '/v1/status', null);
  t.is(missing.status, 401);
  t.regex(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
  t.is(missing.body['code'], 'DIAMOND_UNAUTHORIZED');
  t.truthy(missing.body['hint']);
  const wrong = await call('GET', '/v1/status', 'dmd_not-a-token');
  t.is(wrong.status, 401);
  t.regex(wrong.headers.get('www-authenticate') ?? '', /invalid_token/);
  t.is((await call('POST', '/v1/deployments', 'dmd_not-a-token', { usecase: 'data_quality' })).status, 401);
});

test.serial('a role too low is 403 naming the role needed', async (t) => {
  const deploy = await call('POST', '/v1/deployments', token.viewer, { usecase: 'data_quality' });
  t.is(deploy.status, 403);
  t.regex(String(deploy.body['error']), /needs the deployer role; token "test-viewer" has the viewer role/);
  const undeploy = await call('DELETE', '/v1/deployments/data_quality/A', token.viewer);
  t.is(undeploy.status, 403);
  const viewerToken = await call('POST', '/v1/tokens', token.viewer, { role: 'viewer' });
  t.is(viewerToken.status, 403);
  t.regex(String(viewerToken.body['error']), /needs the admin role/);
  const deployerToken = await call('POST', '/v1/tokens', token.deployer, { role: 'viewer' });
  t.is(deployerToken.status, 403);
  t.regex(String(deployerToken.body['error']), /needs the admin role; token "test-deployer" has the deployer role/);
  t.is((await call('POST', '/v1/replay', token.viewer, {})).status, 403);
});

test.serial('a viewer gets the status: leader, jobs and the platform endpoints', async (t) => {
  const status = await call('GET', '/v1/status', token.viewer);
  t.is(status.status, 200);
  t.is(status.body['leader'], null); // no reconcile loop in this test
  t.deepEqual(status.body['jobs'], []);
  t.deepEqual(Object.keys(status.body['endpoints'] as object).sort(), ['controlUrl', 'feedbackUrl', 'ingestUrl']);
});

test.serial('a deployer deploys data_quality (validated, stored with its version) and undeploys it; a second undeploy is 404', async (t) => {
  const deployed = await call('POST', '/v1/deployments', token.deployer, { usecase: 'data_quality', startingOffsets: 'earliest' });
  t.is(deployed.status, 202, JSON.stringify(deployed.body));
  const deployment = deployed.body['deployment'] as { usecase: string; variant: string; version: string; generation: number; settings: object };
  t.is(deployment.usecase, 'data_quality');
  t.is(deployment.variant, 'A');
  t.regex(deployment.version, /^\w{6,}$/);
  t.deepEqual(deployment.settings, { startingOffsets: 'earliest' });
  const stored = await store.getDeployment('data_quality', 'A');
  t.is(stored?.version, deployment.version);
  t.is(stored?.generation, deployment.generation);

  const status = await call('GET', '/v1/status', token.viewer);
  const jobs = status.body['jobs'] as { job: string; state: string; deployedVersion: string }[];
  t.deepEqual(jobs.map((j) => [j.job, j.state, j.deployedVersion]), [[`${options.jobPrefix}uc.data_quality.A`, 'pending', deployment.version]]);

  const undeployed = await call('DELETE', '/v1/deployments/data_quality/A', token.deployer);
  t.is(undeployed.status, 200);
  t.deepEqual(undeployed.body, { undeployed: { usecase: 'data_quality', variant: 'A' } });
  t.is(await store.getDeployment('data_quality', 'A'), null);
  const again = await call('DELETE', '/v1/deployments/data_quality/A', token.deployer);
  t.is(again.status, 404);
  t.is(again.body['code'], 'DIAMOND_NOT_DEPLOYED');

  // Both changes were published as lifecycle events, keyed by the isolated job id.
  const { events } = await readEvents('/v1/events?follow=0&last=2', () => false);
  t.deepEqual(events.map((e) => [e['event'], e['job']]), [['deployed', `${options.jobPrefix}uc.data_quality.A`], ['undeployed', `${options.jobPrefix}uc.data_quality.A`]]);
});

test.serial('a folder without usecase.yaml is refused with 422 and the hint; malformed bodies are 400 naming the field', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'diamond-empty-usecase-'));
  const refused = await call('POST', '/v1/deployments', token.deployer, { usecase: 'empty_one', dir: empty });
  t.is(refused.status, 422);
  t.is(refused.body['code'], 'DIAMOND_USECASE_UNKNOWN');
  t.regex(String(refused.body['error']), /has no usecase\.yaml/);
  t.regex(String(refused.body['hint']), /diamond usecase new/);
  t.is(await store.getDeployment('empty_one', 'A'), null);

  const noUsecase = await call('POST', '/v1/deployments', token.deployer, { variant: 'A' });
  t.is(noUsecase.status, 400);
  t.regex(String(noUsecase.body['error']), /^usecase /);
  const badVariant = await call('POST', '/v1/deployments', token.deployer, { usecase: 'data_quality', variant: 'AB' });
  t.regex(String(badVariant.body['error']), /^variant /);
  const notJson = await call('POST', '/v1/deployments', token.deployer, '{usecase:');
  t.is(notJson.status, 400);
  t.regex(String(notJson.body['error']), /not JSON/);
  const huge = await call('POST', '/v1/deployments', token.deployer, JSON.stringify({ usecase: 'x', pad: 'x'.repeat(100_000) }));
  t.is(huge.status, 413);
});

test.serial('unknown routes are 404, wrong methods 405 with Allow; replay refuses a job that is not deployed and a bad time', async (t) => {
  t.is((await call('GET', '/v1/nothing', null)).status, 401, 'the token is checked before routing');
  t.is((await call('GET', '/v1/deployments', null)).status, 401);
  const missing = await call('GET', '/v1/nothing', token.viewer);
  t.is(missing.status, 404);
  const openapi = await call('GET', '/openapi.json', null);
  t.is(openapi.body['openapi'], '3.1.0');
  t.truthy((openapi.body['paths'] as Record<string, unknown>)['/v1/deployments/{usecase}/{variant}']);
  const method = await call('GET', '/v1/deployments', token.viewer);
  t.is(method.status, 405);
  t.is(method.headers.get('allow'), 'POST');
  const replay = await call('POST', '/v1/replay', token.deployer, { usecase: 'data_quality', since: '2026-11-01T00:00:00Z' });
  t.is(replay.status, 404);
  t.is(replay.body['code'], 'DIAMOND_NOT_DEPLOYED');
  const badTime = await call('POST', '/v1/replay', token.deployer, { usecase: 'data_quality', since: 'last tuesday' });
  t.is(badTime.status, 400);
  t.regex(String(badTime.body['error']), /not a time/);
  t.is((await call('POST', '/v1/replay', token.deployer, { usecase: 'data_quality' })).status, 400);
  const backfill = await call('POST', '/v1/backfill', token.deployer, { usecase: 'data_quality', since: '7d' });
  t.is(backfill.status, 404, 'a backfill of a job that is not deployed');
  t.is(backfill.body['code'], 'DIAMOND_NOT_DEPLOYED');
  t.is((await call('POST', '/v1/backfill', token.viewer, { usecase: 'data_quality', since: '7d' })).status, 403, 'a viewer may not backfill');
  t.is((await call('POST', '/v1/backfill', token.deployer, { usecase: 'data_quality', since: 'soon' })).status, 400);
});

test.serial('an admin creates a token; it works with its role', async (t) => {
  const created = await call('POST', '/v1/tokens', token.admin, { role: 'deployer', name: 'ci' });
  t.is(created.status, 201);
  t.is(created.body['role'], 'deployer');
  t.is(created.body['name'], 'ci');
  const fresh = String(created.body['token']);
  t.regex(fresh, /^dmd_/);
  t.deepEqual(await tokenStore.verify(fresh).then((grant) => grant && [grant.role, grant.name]), ['deployer', 'ci']);
  t.is((await call('GET', '/v1/status', fresh)).status, 200);
  t.is((await call('POST', '/v1/tokens', fresh, { role: 'viewer' })).status, 403);
  t.is((await call('POST', '/v1/tokens', token.admin, { role: 'root' })).status, 400);
});

test.serial('a lifecycle event published on the events topic arrives over /v1/events, with keep-alives', async (t) => {
  const job = uniqueName('live-job');
  const { events, all } = await readEvents('/v1/events?last=0', (received) => received.some((e) => e['job'] === job), { onOpen: () => publish(job, 'starting') });
  const event = events.find((e) => e['job'] === job);
  t.like(event, { event: 'starting', job, usecase: 'probe', variant: 'A', version: 'v1' });
  t.regex(String(event?.['at']), /^\d{4}-\d\d-\d\dT/);
  t.true(all.every((m) => m.event === 'lifecycle' && /^\d+-\d+$/.test(m.id ?? '')));
});

test.serial('the stream sends keep-alive comments and history first: last=N replays the latest N, then follows', async (t) => {
  const response = await fetch(new URL('/v1/events?last=0', api.url), { headers: { authorization: `Bearer ${token.viewer}` } });
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  let text = '';
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    text += Buffer.from(chunk).toString();
    if (text.includes(': keep-alive')) break;
  }
  t.regex(text, /^: connected\n\n/);

  const jobs = [uniqueName('replay-1'), uniqueName('replay-2'), uniqueName('replay-3')];
  for (const job of jobs) await publish(job);
  const recent = await readEvents('/v1/events?follow=0&last=2', () => false);
  t.deepEqual(recent.events.map((e) => e['job']), jobs.slice(1));

  const live = uniqueName('after-replay');
  const followed = await readEvents('/v1/events?last=1', (events) => events.length === 2, { onOpen: () => publish(live, 'failed', { error: 'exited with code 2' }) });
  t.deepEqual(followed.events.map((e) => e['job']), [jobs[2], live]);
  t.is(followed.events[1]?.['error'], 'exited with code 2');
  t.true(followed.all.length === 2);
});

test.serial('since=<ISO> replays from that time; nothing in range ends a non-following stream at once', async (t) => {
  const before = new Date(Date.now() - 1000).toISOString();
  const jobs = [uniqueName('since-1'), uniqueName('since-2')];
  for (const job of jobs) await publish(job);
  const { events } = await readEvents(`/v1/events?follow=0&since=${encodeURIComponent(before)}`, () => false);
  t.deepEqual(events.map((e) => e['job']).filter((job) => jobs.includes(String(job))), jobs);
  const future = await readEvents(`/v1/events?follow=0&since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, () => false, { timeoutMs: 5000 });
  t.deepEqual(future.events, []);
  t.is((await call('GET', '/v1/events?since=yesterday', token.viewer)).status, 400);
});

test.serial('/metrics: 401 without a token, any operator role reads it; job state and lag per partition from Redis and Kafka', async (t) => {
  const jobId = `${options.jobPrefix}uc.metered.A`;
  await store.putJob({
    jobId, usecase: 'metered', variant: 'A', state: 'backoff', generation: 1, current: null, next: null, retiring: [], restarts: 2, crashes: [],
    nextStartAt: null, lastError: null, lastLogFile: null, updatedAt: Date.now(),
  });
  await producer.send({ topic: options.topics.input, messages: Array.from({ length: 5 }, (_, i) => ({ partition: 0, value: `m${i}` })) });
  t.true((await commitJobOffsets(kafka, admin, jobId, options.topics.input, { '0': 2 })).committed);

  t.is((await fetch(new URL('/metrics', api.url))).status, 401, 'not anonymous');
  const scrape = await fetch(new URL('/metrics', api.url), { headers: { authorization: `Bearer ${token.viewer}` } });
  t.is(scrape.status, 200);
  t.regex(scrape.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await scrape.text();
  const job = `job="${jobId}"`;
  t.regex(text, new RegExp(`diamond_job_state\\{${job},usecase="metered",variant="A",state="backoff"\\} 1\n`));
  t.regex(text, new RegExp(`diamond_job_state\\{${job},usecase="metered",variant="A",state="running"\\} 0\n`));
  t.regex(text, new RegExp(`diamond_job_lag_messages\\{${job},partition="0"\\} 3\n`), '5 written, 2 committed');
  t.regex(text, new RegExp(`diamond_job_lag_messages\\{${job},partition="1"\\} 0\n`));
  t.regex(text, /diamond_control_api_request_duration_seconds_count\{method="GET",route="\/metrics",status="401"\} 1\n/);
  t.regex(text, /# TYPE diamond_job_restarts_total counter/);
  t.regex(text, /# TYPE diamond_job_batch_duration_seconds histogram/);
  t.regex(text, /process_resident_memory_bytes/);
  t.is((await fetch(new URL('/metrics', api.url), { headers: { authorization: `Bearer ${token.admin}` } })).status, 200, 'a higher role reads it too');
});

test.serial("logs: the job's latest log file, its last lines, and followed appends", async (t) => {
  const logDir = join(options.jobsDir, 'logtest');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, 'run.log');
  writeFileSync(logFile, 'line 1\nline 2\nline 3\n');
  const jobId = `${options.jobPrefix}uc.logged.B`;
  const record: JobRecord = {
    jobId, usecase: 'logged', variant: 'B', state: 'running', generation: 1, current: null, next: null, retiring: [], restarts: 0, crashes: [],
    nextStartAt: null, lastError: null, lastLogFile: logFile, updatedAt: Date.now(),
  };
  await store.putJob(record);

  const tail = await fetch(new URL('/v1/jobs/logged/B/logs?lines=2', api.url), { headers: { authorization: `Bearer ${token.viewer}` } });
  t.is(tail.status, 200);
  t.is(await tail.text(), 'line 2\nline 3\n');

  const controller = new AbortController();
  let received = '';
  try {
    for await (const chunk of await new ControlClient(api.url, token.viewer).stream('/v1/jobs/logged/B/logs?lines=1&follow=1', controller.signal)) {
      received += Buffer.from(chunk).toString();
      if (received === 'line 3\n') appendFileSync(logFile, 'line 4\n');
      if (received.includes('line 4\n')) break;
    }
  } finally {
    controller.abort();
  }
  t.is(received, 'line 3\nline 4\n');

  const none = await call('GET', '/v1/jobs/never_started/A/logs', token.viewer);
  t.is(none.status, 404);
  t.is(none.body['code'], 'DIAMOND_NO_LOG');
});

test.serial('A/B data: relayed from downstream with the caller\'s token; 503 with the fix when downstream is unreachable', async (t) => {
  const nowhere = await closedPort();
  const down = await startControlApi(loadConfig({ ...process.env, DIAMOND_FEEDBACK_URL: `http://127.0.0.1:${nowhere}` }), { options, logger, endpoints: platformEndpoints(config) }, { port: 0 });
  extraApis.push(down);
  const unreachable = await call('GET', '/v1/ab/data_quality', token.viewer, undefined, down.url);
  t.is(unreachable.status, 503);
  t.is(unreachable.body['code'], 'DIAMOND_SERVICE_UNAVAILABLE');
  t.regex(String(unreachable.body['error']), new RegExp(`feedback API \\(downstream\\) not reachable at http://127\\.0\\.0\\.1:${nowhere}`));
  t.regex(String(unreachable.body['hint']), /diamond serve downstream/);

  // Downstream's feedback API on a fresh keyspace, verifying operator tokens under this test's prefix.
  const keyspace = uniqueKeyspace('control');
  const downstream = await startDownstream(config, { logger, parts: ['api'], port: 0, keyspace, redisKeyPrefix: `${options.keyPrefix}downstream:`, operatorKeyPrefix: options.keyPrefix });
  t.teardown(async () => {
    await downstream.stop();
    const cassandra = createCassandra(config);
    await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    await cassandra.shutdown();
  });
  const relay = await startControlApi(loadConfig({ ...process.env, DIAMOND_FEEDBACK_URL: downstream.url ?? '' }), { options, logger, endpoints: platformEndpoints(config) }, { port: 0 });
  extraApis.push(relay);
  const report = await call('GET', '/v1/ab/data_quality?days=2&variants=A,B', token.viewer, undefined, relay.url);
  t.is(report.status, 200, JSON.stringify(report.body));
  t.like(report.body, { usecase: 'data_quality', days: 2, variants: [], weights: null });
  // Downstream checks the token itself.
  t.is((await call('GET', '/v1/ab/data_quality', null, undefined, downstream.url ?? '')).status, 401);
  t.is((await call('GET', '/v1/ab/data_quality', token.viewer, undefined, downstream.url ?? '')).status, 200);
  t.is((await call('GET', '/v1/ab/data_quality?variants=AB', token.viewer)).status, 400);

  // `diamond ab` is a client of the same route, with the CLI's operator token.
  const cli = await runCli(['ab', 'data_quality', '--days', '2', '--json'], { DIAMOND_FEEDBACK_URL: downstream.url ?? '', DIAMOND_TOKEN: token.viewer });
  t.is(cli.code, 0, cli.stderr);
  t.like(JSON.parse(cli.stdout), { usecase: 'data_quality', days: 2, weights: null });
  const refused = await runCli(['ab', 'data_quality'], { DIAMOND_FEEDBACK_URL: downstream.url ?? '', DIAMOND_TOKEN: 'dmd_not-a-token' });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /not valid|API key is required/);
});

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['infra/cli/bin.js', ...args], { cwd: config.projectRoot, env: { ...process.env, DIAMOND_LOG_LEVEL: 'warn', ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test.serial('CLI: status --json and events --json go through the API; no token or no API says what to do', async (t) => {
  const port = new URL(api.url).port;
  const home = mkdtempSync(join(tmpdir(), 'diamond-cli-home-'));
  // Its own home, the shared Redis: that Redis's password file lives in the shared home.
  const target = { DIAMOND_HTTP_HOST: '127.0.0.1', DIAMOND_CONTROL_PORT: port, DIAMOND_HOME: home, DIAMOND_REDIS_PASSWORD_FILE: config.redis.passwordFile };

  const status = await runCli(['status', '--json'], { ...target, DIAMOND_TOKEN: token.viewer });
  t.is(status.code, 3, `no orchestrator leads here (no reconcile loop): status says so with exit 3\n${status.stderr}`);
  const parsed = JSON.parse(status.stdout) as { leader: unknown; jobs: unknown[]; endpoints: { controlUrl: string } };
  t.deepEqual(Object.keys(parsed).sort(), ['endpoints', 'flows', 'health', 'history', 'jobs', 'leader', 'pool', 'runs', 'topics']);
  t.true(Array.isArray(parsed.jobs));
  t.is(parsed.endpoints.controlUrl, `http://127.0.0.1:${port}`);

  const job = uniqueName('cli-event');
  await publish(job);
  const events = await runCli(['events', '--json', '--last', '1'], { ...target, DIAMOND_TOKEN: token.viewer });
  t.is(events.code, 0, events.stderr);
  t.like(JSON.parse(events.stdout.trim()), { event: 'running', job });

  const human = await runCli(['events', '--last', '1'], { ...target, DIAMOND_TOKEN: token.viewer });
  t.regex(human.stdout, new RegExp(`^\\d{4}-.*Z  ${job}\\s+running\\s+v1\\n$`));

  const denied = await runCli(['deploy', 'data_quality'], { ...target, DIAMOND_TOKEN: token.viewer });
  t.is(denied.code, 1);
  t.regex(denied.stderr, /needs the deployer role[\s\S]*→ ask an admin for a deployer token/);

  const noToken = await runCli(['status'], { ...target, DIAMOND_TOKEN: '' });
  t.is(noToken.code, 1);
  t.regex(noToken.stderr, /no token for the orchestrator control API/);
  t.regex(noToken.stderr, /set DIAMOND_TOKEN or run `npx diamond up` \(it writes one to .*local\.json\); create one with `npx diamond token add --role deployer`/);

  const nowhere = await closedPort();
  const noApi = await runCli(['status'], { ...target, DIAMOND_CONTROL_PORT: String(nowhere), DIAMOND_TOKEN: token.viewer });
  t.is(noApi.code, 1);
  t.regex(noApi.stderr, new RegExp(`orchestrator control API not reachable at http://127\\.0\\.0\\.1:${nowhere}[\\s\\S]*run \`npx diamond up\` or \`npx diamond serve orchestrator\``));
});

test.serial('CLI: --json on every command: stdout parses as JSON (or one object per line), a failure is a JSON error on stderr', async (t) => {
  const port = new URL(api.url).port;
  const home = mkdtempSync(join(tmpdir(), 'diamond-cli-json-'));
  // Its own home, the shared Redis: that Redis's password file lives in the shared home.
  const target = { DIAMOND_HTTP_HOST: '127.0.0.1', DIAMOND_CONTROL_PORT: port, DIAMOND_HOME: home, DIAMOND_REDIS_PASSWORD_FILE: config.redis.passwordFile };
  const parses = (what: string, text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${what}: stdout is not JSON:\n${text.slice(0, 500)}`);
    }
  };
  const lines = (what: string, text: string): unknown[] => text.split('\n').filter((l) => l.length > 0).map((l) => parses(what, l));
  const ok = async (args: string[], env: Record<string, string> = {}): Promise<unknown> => {
    const run = await runCli([...args, '--json'], { ...target, ...env });
    t.is(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
    return parses(args.join(' '), run.stdout);
  };
  const deployer = { DIAMOND_TOKEN: token.deployer };

  t.like(await ok(['deploy', 'data_quality', '--variant', 'A'], deployer), { deployment: { usecase: 'data_quality', variant: 'A' } });
  const status = await runCli(['status', '--json'], { ...target, ...deployer });
  t.like(parses('status', status.stdout), { leader: null });
  // --url and --token instead of the environment (a remote control API).
  const flags = await runCli(['status', '--json', '--url', api.url, '--token', token.viewer], { DIAMOND_HOME: home, DIAMOND_CONTROL_PORT: String(await closedPort()), DIAMOND_TOKEN: '' });
  t.like(parses('status --url --token', flags.stdout), { leader: null, jobs: [{ usecase: 'data_quality', variant: 'A' }] });
  t.like(await ok(['replay', 'data_quality', '--variant', 'A', '--since', '2026-11-01T00:00:00Z'], deployer), { replay: { since: '2026-11-01T00:00:00.000Z' } });
  // --wait with nothing to run it (no reconcile loop here): it gives up after its timeout, saying why.
  const waited = await runCli(['deploy', 'data_quality', '--wait', '--wait-timeout', '2s', '--json'], { ...target, ...deployer });
  t.is(waited.code, 1);
  t.like(parses('deploy --wait error', waited.stderr.trim()), { error: { code: 'DIAMOND_DEPLOY_WAIT_FAILED' } });
  t.regex(waited.stderr, /is not running after 2 s \(state pending, and no orchestrator leads\)/);
  t.like(await ok(['undeploy', 'data_quality', '--variant', 'A'], deployer), { undeployed: { usecase: 'data_quality', variant: 'A' } });

  // Tokens: listed without the token itself, revoked by name (the plaintext is not needed).
  const tokenName = uniqueName('cli-json');
  const added = (await ok(['token', 'add', '--role', 'viewer', '--name', tokenName])) as { token: string; role: string };
  t.is(added.role, 'viewer');
  const listed = (await ok(['token', 'list'])) as { tokens: { name: string; id: string }[] };
  const mine = listed.tokens.find((g) => g.name === tokenName);
  t.truthy(mine, 'token list shows the new token by name');
  t.false(JSON.stringify(listed).includes(added.token), 'token list never shows a token');
  t.like(await ok(['token', 'revoke', tokenName]), { revoked: true, tokens: [{ id: mine!.id, name: tokenName }] });
  t.false(((await ok(['token', 'list'])) as { tokens: { name: string }[] }).tokens.some((g) => g.name === tokenName), 'revoked by name: gone');
  const second = (await ok(['token', 'add', '--role', 'viewer'])) as { token: string };
  t.like(await ok(['token', 'revoke', second.token]), { revoked: true });
  const source = uniqueName('cli-json-src');
  t.teardown(async () => {
    const raw = createRedis(config);
    await raw.del(`diamond:upstream:source:${source}`);
    raw.disconnect();
  });
  t.like(await ok(['source', 'add', source]), { source });
  t.like(((await ok(['source', 'list'])) as { sources: { name: string }[] }).sources.find((s) => s.name === source), { name: source, hasKey: true });
  t.like(await ok(['source', 'revoke', source]), { source, revoked: true });
  const customer = uniqueName('cli-json-cust');
  t.like(await ok(['customer', 'add', customer]), { customer });
  t.like(((await ok(['customer', 'list'])) as { customers: { customer: string }[] }).customers.find((c) => c.customer === customer), { customer, keys: 1 });
  t.like(await ok(['customer', 'revoke', customer]), { customer, revoked: 1 });
  t.like(await ok(['usecase', 'new', 'json_probe', '--root', home]), { usecase: 'json_probe' });
  t.like(await ok(['rollout', 'data_quality']), { usecase: 'data_quality' });
  t.truthy(await ok(['config']));
  t.true(Array.isArray(await ok(['services', 'status'])));
  t.like(await ok(['kafka', 'topics', '--list']), { tool: 'topics', exitCode: 0 });
  const logs = await runCli(['services', 'logs', 'kafka', '-n', '3', '--json'], {});
  t.is(logs.code, 0, logs.stderr);
  t.true(lines('services logs', logs.stdout).every((l) => typeof (l as { line?: unknown }).line === 'string'));

  // Failures: one JSON object on stderr with the code, exit code as documented.
  const unknown = await runCli(['rollout', 'no_such_usecase', 'A=50,B=50', '--json'], target);
  t.is(unknown.code, 1);
  t.like(parses('rollout error', unknown.stderr.trim()), { error: { code: 'DIAMOND_USECASE_UNKNOWN' } });
  const usage = await runCli(['deploy', '--json'], target);
  t.is(usage.code, 2);
  t.like(parses('usage error', usage.stderr.trim()), { error: { code: 'DIAMOND_BAD_ARGUMENT' } });
  t.is(usage.stdout, '');
});
