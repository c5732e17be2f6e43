/**
 * The feedback API's GET /v1/summary on the real services and a real function session: the
 * feedback API (its own key prefix and keyspace) runs customer_insights.customer_summary on a
 * control API (isolated options, its own history folder) over HTTP with a runner token from a
 * file. The history holds two customers; each key gets its own summary, equal to what the
 * test computes from the rows it wrote, and no parameter reaches the other customer's rows.
 * Serial, one shared function session: one Spark start (≈ 20 s), then warm runs.
 */
import test from 'ava';
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomerKeys } from '../../downstream/customer-keys.ts';
import { startDownstream, type RunningDownstream } from '../../downstream/service.ts';
import { startControlApi, type ControlApi } from '../../infra/orchestrator/control-api.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { createCassandra } from '../../shared/cassandra.ts';
import { loadConfig } from '../../shared/config.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { createRedis } from '../../shared/redis.ts';
import { testKafka, TEST_USECASE_ROOTS, uniqueKeyspace, uniqueName } from '../support/env.ts';
import { expectedSummary, historyFeedback, historyRecord, writeHistory } from '../support/history.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';

const history = mkdtempSync(join(tmpdir(), 'diamond-summary-history-'));
chmodSync(history, 0o755); // the session runs as the job user when the tests run as root
const secrets = mkdtempSync(join(tmpdir(), 'diamond-summary-token-'));
const tokenFile = join(secrets, 'runner.token');
const base = { ...process.env, DIAMOND_USECASE_ROOTS: TEST_USECASE_ROOTS, DIAMOND_HISTORY_DIR: history, DIAMOND_LOG_LEVEL: process.env['DIAMOND_LOG_LEVEL'] ?? 'warn' };
const controlConfig = loadConfig(base);
const options = isolatedOrchestratorOptions('summary');
const downstreamPrefix = `${uniqueName('test-summary-down')}:`;
const keyspace = uniqueKeyspace('summary');
const logger = createLogger(controlConfig, { fd: 2, bindings: { test: 'orchestrator-summary' } });
const tokenRedis = createRedis(controlConfig, { keyPrefix: options.keyPrefix });
const tokens = new TokenStore(tokenRedis);
let api: ControlApi;
let downstream: RunningDownstream;
let runner = '';
let viewer = '';
let keyA = '';
let keyB = '';

// acme (A) spends EUR and USD and has anomaly/quality feedback; globex (B) only GBP and praise:
// any of A's currencies or kinds in B's summary would be A's data.
const records = [
  historyRecord('a1', 'acme', 0.5, 10.25, 'EUR'), historyRecord('a2', 'acme', 1.5, 20, 'EUR'), historyRecord('a3', 'acme', 2.5, 5.5, 'USD'),
  historyRecord('a4', 'acme', 3.5, null, null), historyRecord('a-old', 'acme', 9, 1000, 'EUR'), // before since=7d
  historyRecord('b1', 'globex', 1, 99, 'GBP'), historyRecord('b2', 'globex', 20, 1.5, 'GBP'), historyRecord('b-old', 'globex', 40, 7, 'GBP'), // b-old: before the default 30d
];
const feedback = [
  historyFeedback('fa1', 'acme', 1, 'anomaly'), historyFeedback('fa2', 'acme', 2, 'anomaly'), historyFeedback('fa3', 'acme', 3, 'quality'),
  historyFeedback('fb1', 'globex', 2, 'praise'),
];

test.before(async () => {
  await writeHistory(history, records, feedback);
  // The control API's /metrics reads its input topic: it must exist (nothing is produced to it).
  const admin = testKafka().admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: options.topics.input, partitions: 1 }]);
  await admin.disconnect();
  api = await startControlApi(controlConfig, { options, logger, endpoints: platformEndpoints(controlConfig) }, { port: 0 });
  runner = await tokens.add('runner', 'feedback-api summary');
  viewer = await tokens.add('viewer', 'viewer');
  writeFileSync(tokenFile, `${runner}\n`, { mode: 0o600 });
  // What `diamond up` configures: the control URL and the runner token file.
  const downstreamConfig = loadConfig({ ...base, DIAMOND_CONTROL_URL: api.url, DIAMOND_SUMMARY_TOKEN_FILE: tokenFile, DIAMOND_SUMMARY_WAIT: '120s' });
  downstream = await startDownstream(downstreamConfig, { logger, parts: ['api'], port: 0, keyspace, redisKeyPrefix: downstreamPrefix, operatorKeyPrefix: options.keyPrefix });
  const redis = createRedis(downstreamConfig, { keyPrefix: downstreamPrefix });
  const keys = new CustomerKeys(redis);
  [keyA, keyB] = [await keys.add('acme'), await keys.add('globex')];
  redis.disconnect();
});

test.after.always(async () => {
  await downstream?.stop();
  await api?.close();
  tokenRedis.disconnect(); // an open connection would keep the worker (and ava) from exiting
  const raw = createRedis(controlConfig);
  for (const prefix of [options.keyPrefix, downstreamPrefix]) {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
  }
  raw.disconnect();
  const cassandra = createCassandra(controlConfig);
  await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await cassandra.shutdown();
  rmSync(history, { recursive: true, force: true });
  rmSync(secrets, { recursive: true, force: true });
});

interface Summary { customer_id: string; since: string; records: number; spend_by_currency: Record<string, number>; feedback_by_kind: Record<string, number> }
interface Answer { status: number; text: string; body: { summary?: Summary; run?: { id: string; state: string; timings: Record<string, number> | null }; error?: string; code?: string; hint?: string } }

async function summary(key: string | null, query = ''): Promise<Answer> {
  const response = await fetch(`${downstream.url}/v1/summary${query ? `?${query}` : ''}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) as Answer['body'] };
}

test.serial("A's key gets A's summary, equal to what the test computes from the history it wrote", async (t) => {
  const started = Date.now();
  const answer = await summary(keyA, 'since=7d');
  t.log(`first summary (cold session) ${Date.now() - started} ms`);
  t.is(answer.status, 200, answer.text);
  const { summary: got, run } = answer.body;
  t.is(run?.state, 'finished');
  t.truthy(run?.id);
  const since = Date.parse(got!.since);
  t.true(Math.abs(since - (started - 7 * 86_400_000)) < 60_000, 'since=7d is 7 days before the run');
  t.deepEqual(got, { customer_id: 'acme', since: got!.since, ...expectedSummary(records, feedback, 'acme', since) });
});

test.serial("B's key gets B's summary (default since 30d), with none of A's rows", async (t) => {
  const answer = await summary(keyB);
  t.is(answer.status, 200, answer.text);
  const got = answer.body.summary!;
  t.deepEqual(got, { customer_id: 'globex', since: got.since, ...expectedSummary(records, feedback, 'globex', Date.parse(got.since)) });
  t.is(got.records, 2, 'b1 and b2; b-old is older than 30 days');
  t.notRegex(answer.text, /acme|EUR|USD|anomaly|quality/);
});

test.serial('the customer comes from the key: customer_id or any other parameter is 400 naming it; a bad since is 400', async (t) => {
  for (const query of ['customer_id=globex', 'customer_id=acme', 'since=7d&customer_id=globex']) {
    const answer = await summary(keyA, query);
    t.is(answer.status, 400, query);
    t.regex(answer.body.error ?? '', /^customer_id is not a parameter/, query);
  }
  const other = await summary(keyA, 'customer=globex');
  t.is(other.status, 400);
  t.regex(other.body.error ?? '', /^customer is not a parameter/);
  const since = await summary(keyA, 'since=last%20tuesday');
  t.is(since.status, 400, since.text);
  t.regex(since.body.error ?? '', /^since /);
  t.regex(since.body.hint ?? '', /ISO-8601/);
  t.is((await summary(null)).status, 401);
  t.is((await summary(viewer)).status, 403, 'an operator token is not a customer key');
});

test.serial('without a working runner token: 503 saying what to configure, never the token; back once it is there', async (t) => {
  renameSync(tokenFile, `${tokenFile}.away`);
  const missing = await summary(keyA);
  t.is(missing.status, 503, missing.text);
  t.is(missing.body.code, 'DIAMOND_SUMMARY_NOT_CONFIGURED');
  t.regex(missing.body.hint ?? '', /DIAMOND_SUMMARY_TOKEN_FILE/);
  t.regex(missing.body.hint ?? '', /--role runner/);
  // A token below runner: the control API refuses it (403), the customer sees 503 without it.
  writeFileSync(tokenFile, viewer, { mode: 0o600 });
  const weak = await summary(keyA);
  t.is(weak.status, 503, weak.text);
  t.is(weak.body.code, 'DIAMOND_SUMMARY_NOT_CONFIGURED');
  t.false(weak.text.includes(viewer) || weak.text.includes(runner), 'no token in the answer');
  renameSync(`${tokenFile}.away`, tokenFile);
  const back = await summary(keyA, 'since=2d');
  t.is(back.status, 200, back.text);
  t.is(back.body.summary?.customer_id, 'acme');
});
