/**
 * The dashboard's side of the control API, on the real Redis and Kafka (no reconcile loop, no
 * Spark, no browser: test/e2e/dashboard.test.ts drives the page in Chromium): /ui and its two
 * files without a token and with a policy that allows nothing from elsewhere; every data route
 * refuses without a token; /v1/whoami; the rollout weights read and set through the API land
 * where the feedback writer reads them, each change a rollout-changed event on the stream the
 * page follows; each job's latency percentiles, the pool and the latest runs in /v1/status; `diamond ui`'s link carries a working token in its
 * fragment only.
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { parseLifecycleEvent } from '../../shared/messages.ts';
import { createRedis, redisPassword } from '../../shared/redis.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { RolloutStore } from '../../shared/rollout-weights.ts';
import { startControlApi, type ControlApi } from '../../infra/orchestrator/control-api.ts';
import { dashboardLink } from '../../infra/orchestrator/dashboard-link.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { RunStore } from '../../infra/orchestrator/run-store.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { config, testKafka, uniqueName } from '../support/env.ts';

const options = isolatedOrchestratorOptions('dashboard');
const rolloutKeyPrefix = `${uniqueName('test-dashboard-down')}:`;
const redis = createRedis(config, { keyPrefix: options.keyPrefix });
const rolloutRedis = createRedis(config, { keyPrefix: rolloutKeyPrefix });
const tokens = new TokenStore(redis);
const admin = testKafka().admin();
let api: ControlApi;
const token = { viewer: '', deployer: '' };
/** Stands in for upstream's ingest API as far as its /readyz goes (a real HTTP server on a free port). */
const readyIngest = createServer((request, response) => response.writeHead(request.url === '/readyz' ? 200 : 404, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
/** A port nothing listens on: downstream is down. */
let downFeedbackUrl = '';

test.before(async () => {
  await admin.connect();
  // The input topic exists, as records.normalized does on a platform: /v1/status reads its offsets,
  // and kafkajs' admin refreshes metadata for every topic it was asked about, so a missing one
  // would fail the event stream's calls on the same admin too.
  await ensureTopics(admin, [{ topic: options.topics.input, partitions: 1 }]);
  await new Promise<void>((resolve) => readyIngest.listen(0, '127.0.0.1', resolve));
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  downFeedbackUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const endpoints = { ...platformEndpoints(config), ingestUrl: `http://127.0.0.1:${(readyIngest.address() as AddressInfo).port}`, feedbackUrl: downFeedbackUrl };
  api = await startControlApi(config, { options, logger: createLogger({ logLevel: 'error' }, { fd: 2 }), endpoints, rolloutKeyPrefix }, { port: 0 });
  token.viewer = await tokens.add('viewer', 'dashboard-test-viewer');
  token.deployer = await tokens.add('deployer', 'dashboard-test-deployer');
  await new DeploymentStore(redis).putDeployment({ usecase: 'spending_spike', variant: 'A', folder: '/nonexistent/spending_spike', version: 'v-test' });
});

test.after.always(async () => {
  await api?.close();
  readyIngest.close();
  const raw = new Redis(config.redis.url, { password: redisPassword(config) });
  for (const prefix of [options.keyPrefix, rolloutKeyPrefix]) {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
  }
  raw.disconnect();
  redis.disconnect();
  rolloutRedis.disconnect();
  await admin.deleteTopics({ topics: [options.topics.events, options.topics.input] }).catch(() => undefined);
  await admin.disconnect();
});

const call = (path: string, init: RequestInit & { token?: string } = {}): Promise<Response> =>
  fetch(`${api.url}${path}`, { ...init, headers: { ...(init.token ? { Authorization: `Bearer ${init.token}` } : {}), ...(init.body ? { 'Content-Type': 'application/json' } : {}) } });

test('/ui and its script and style sheet are served without a token, with a policy that loads nothing from elsewhere', async (t) => {
  const page = await call('/ui');
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /^text\/html/);
  const csp = page.headers.get('content-security-policy') ?? '';
  t.regex(csp, /default-src 'none'/);
  t.regex(csp, /connect-src 'self'/);
  t.is(page.headers.get('referrer-policy'), 'no-referrer');
  const html = await page.text();
  t.regex(html, /<script type="module" src="\/ui\/app\.js">/);
  for (const [file, type] of [['app.js', /^text\/javascript/], ['app.css', /^text\/css/]] as const) {
    const asset = await call(`/ui/${file}`);
    t.is(asset.status, 200, file);
    t.regex(asset.headers.get('content-type') ?? '', type, file);
    // Offline: nothing is fetched from another origin.
    t.notRegex(await asset.text(), /https?:\/\/|@import/, file);
  }
  t.notRegex(html, /https?:\/\//);
  t.is((await call('/ui/other.js')).status, 400); // only the two files (the route's schema names them)
});

test('the data routes refuse without a token, or with a wrong one', async (t) => {
  for (const path of ['/v1/status', '/v1/whoami', '/v1/rollouts/spending_spike', '/v1/events?follow=0', '/v1/jobs/spending_spike/A/logs']) {
    const answer = await call(path);
    t.is(answer.status, 401, path);
    t.regex(answer.headers.get('www-authenticate') ?? '', /^Bearer/, path);
    t.is((await call(path, { token: 'dmd_not-a-token' })).status, 401, path);
  }
  t.is((await call('/v1/rollouts/spending_spike', { method: 'PUT', body: JSON.stringify({ weights: { A: 1 } }) })).status, 401);
});

test('whoami names the role, which is what the page enables its actions by', async (t) => {
  const viewer = await call('/v1/whoami', { token: token.viewer });
  t.is(viewer.status, 200);
  const grant = (await viewer.json()) as { name: string; role: string; id: string };
  t.like(grant, { name: 'dashboard-test-viewer', role: 'viewer' });
  t.false(JSON.stringify(grant).includes(token.viewer), 'the token itself is never echoed');
  t.like(await (await call('/v1/whoami', { token: token.deployer })).json(), { role: 'deployer' });
});

test('rollout weights: a viewer reads them, a deployer sets them where the feedback writer reads them', async (t) => {
  t.deepEqual(await (await call('/v1/rollouts/spending_spike', { token: token.viewer })).json(), { usecase: 'spending_spike', weights: null });
  const body = JSON.stringify({ weights: { A: 70, B: 30 } });
  const refused = await call('/v1/rollouts/spending_spike', { method: 'PUT', token: token.viewer, body });
  t.is(refused.status, 403);
  t.like(await refused.json(), { code: 'DIAMOND_FORBIDDEN' });

  const set = await call('/v1/rollouts/spending_spike', { method: 'PUT', token: token.deployer, body });
  t.is(set.status, 200);
  t.deepEqual(await set.json(), { usecase: 'spending_spike', before: null, after: { A: 70, B: 30 } });
  t.deepEqual(await new RolloutStore(rolloutRedis).get('spending_spike'), { A: 70, B: 30 }, "in downstream's namespace, where the writer reads them");
  t.deepEqual(await (await call('/v1/rollouts/spending_spike', { token: token.viewer })).json(), { usecase: 'spending_spike', weights: { A: 70, B: 30 } });

  const promote = await call('/v1/rollouts/spending_spike', { method: 'PUT', token: token.deployer, body: JSON.stringify({ weights: { A: 0, B: 100 } }) });
  t.like(await promote.json(), { before: { A: 70, B: 30 }, after: { A: 0, B: 100 } });

  for (const weights of [{ A: 0, B: 0 }, { A: -1 }, {}, { a: 10 }]) {
    const bad = await call('/v1/rollouts/spending_spike', { method: 'PUT', token: token.deployer, body: JSON.stringify({ weights }) });
    t.is(bad.status, 400, JSON.stringify(weights));
  }
  const undeployed = await call('/v1/rollouts/data_quality', { method: 'PUT', token: token.deployer, body });
  t.is(undeployed.status, 404);
  t.deepEqual(await new RolloutStore(rolloutRedis).get('spending_spike'), { A: 0, B: 100 }, 'refused changes change nothing');

  // Each change is a rollout-changed lifecycle event, read back through the API's own event stream
  // (which the dashboard follows); refused changes publish nothing.
  const stream = await call('/v1/events?follow=0&last=100', { token: token.viewer });
  t.is(stream.status, 200, stream.status === 200 ? '' : await stream.clone().text());
  const events = (await stream.text()).split('\n').filter((line) => line.startsWith('data: ')).map((line) => parseLifecycleEvent(line.slice(6)));
  const changes = events.flatMap((parsed) => (parsed.ok && parsed.message.event === 'rollout-changed' ? [parsed.message] : []));
  t.like(changes, [
    { job: `${options.jobPrefix}uc.spending_spike`, usecase: 'spending_spike', variant: '*', before: null, weights: { A: 70, B: 30 }, by: 'dashboard-test-deployer' },
    { before: { A: 70, B: 30 }, weights: { A: 0, B: 100 } },
  ]);
  t.is(changes.length, 2);
});

test("status gives each job's latency p50/p99 over its latest 100 batches, as the job page shows it", async (t) => {
  const store = new DeploymentStore(redis);
  const job = `${options.jobPrefix}uc.spending_spike.A`;
  const before = (await (await call('/v1/status', { token: token.viewer })).json()) as { jobs: { job: string; latencyMs: unknown }[] };
  t.is(before.jobs.find((j) => j.job === job)?.latencyMs, null, 'no batch yet: unknown, not 0');
  // As progress ingestion records them: 150 batches of 1…150 ms, of which the latest 100 count.
  for (let ms = 1; ms <= 150; ms += 1) await store.recordBatchDuration(job, ms);
  const status = (await (await call('/v1/status', { token: token.viewer })).json()) as { jobs: { job: string; latencyMs: unknown }[] };
  t.deepEqual(status.jobs.find((j) => j.job === job)?.latencyMs, { p50: 100, p99: 149, batches: 100 });
});

test('status lists the latest function runs across functions (the dashboard\'s runs table), with the user\'s file and line of a failure', async (t) => {
  const runs = new RunStore(redis, 60_000);
  const base = { usecase: 'customer_insights', version: 'v1', params: {}, by: 'dashboard-test-runner', session: 's1', result: null, timings: null };
  await runs.put({ ...base, id: 'run-older', function: 'customer_insights.customer_summary', state: 'finished', queuedAt: '2026-12-01T10:00:00.000Z', startedAt: '2026-12-01T10:00:00.100Z', endedAt: '2026-12-01T10:00:00.900Z', error: null, events: [] });
  await runs.put({
    ...base, id: 'run-newer', function: 'customer_insights.top_spenders', state: 'failed', queuedAt: '2026-12-01T10:01:00.000Z', startedAt: '2026-12-01T10:01:00.100Z', endedAt: '2026-12-01T10:01:01.000Z',
    error: { code: 'user_code', message: 'ZeroDivisionError: division by zero', file: 'functions.py', line: 12, function: 'top_spenders' }, events: [],
  });
  const status = (await (await call('/v1/status', { token: token.viewer })).json()) as { runs: { id: string }[]; pool: unknown };
  t.like(status.runs, [
    { id: 'run-newer', function: 'customer_insights.top_spenders', state: 'failed', error: { code: 'user_code', file: 'functions.py', line: 12 } },
    { id: 'run-older', state: 'finished', error: null, endedAt: '2026-12-01T10:00:00.900Z' },
  ]);
  t.false('params' in (status.runs[0] ?? {}), 'params and results stay in GET /v1/runs/<id>');
  t.like(status.pool, { size: config.orchestrator.poolSize, ready: 0, starting: 0 });
});

test("status gives the health the topology draws on upstream's and downstream's nodes, by their own /readyz", async (t) => {
  const status = (await (await call('/v1/status', { token: token.viewer })).json()) as { health: unknown; endpoints: { feedbackUrl: string } };
  t.deepEqual(status.health, { ingest: 'ready', feedback: 'unreachable' });
  t.is(status.endpoints.feedbackUrl, downFeedbackUrl);
});

test("diamond ui's link carries a token of its own in the fragment only", async (t) => {
  const link = await dashboardLink(tokens, api.url, { role: 'viewer', expiresAt: new Date(Date.now() + 60_000) });
  const url = new URL(link.url);
  t.is(url.pathname, '/ui');
  t.is(url.search, '', 'no token in the query string (servers log it)');
  const fragmentToken = new URLSearchParams(url.hash.slice(1)).get('token') ?? '';
  t.regex(fragmentToken, /^dmd_/);
  t.like(await tokens.verify(fragmentToken), { role: 'viewer', name: 'dashboard-viewer' });
  t.is(link.expiresAt !== null && Date.parse(link.expiresAt) > Date.now(), true);
});
