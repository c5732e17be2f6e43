/**
 * Function runs on the real services and Spark (docs/RUNS.md): one control API with its own
 * keys, topics and history folder; the test writes the history (Parquet, the archiver's
 * layout, with pyarrow: no Spark) and computes the expected summary itself. A sync run of
 * customer_insights.customer_summary returns that summary; an async run goes queued → started →
 * finished on diamond.runs and over SSE; bad params are 400 before anything is queued; a raising
 * run shows the user's file and line; eight concurrent runs from eight tokens get their own
 * answers; a run over its timeout is timed-out, its stuck session killed, and the next run works.
 * Serial, one shared function session (plus one after the timeout kill): two Spark starts.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../shared/config.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { parseRunEvent, type RunEventMessage } from '../../shared/messages.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { createRedis } from '../../shared/redis.ts';
import { SseParser, type SseMessage } from '../../infra/cli/control-client.ts';
import { startControlApi, type ControlApi } from '../../infra/orchestrator/control-api.ts';
import type { RunRecord } from '../../infra/orchestrator/run-store.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { findProcesses } from '../../shared/process-group.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';
import { consumeUntil, TEST_USECASE_ROOTS, testKafka } from '../support/env.ts';
import { expectedSummary, historyFeedback, historyRecord, writeHistory, type HistoryFeedback, type HistoryRecord } from '../support/history.ts';

const DAY = 86_400_000;
const now = Date.now();
const history = mkdtempSync(join(tmpdir(), 'diamond-runs-history-'));
chmodSync(history, 0o755); // the session runs as the job user when the tests run as root
const config = loadConfig({ ...process.env, DIAMOND_USECASE_ROOTS: TEST_USECASE_ROOTS, DIAMOND_HISTORY_DIR: history, DIAMOND_RUNS_KILL_GRACE: '2s', DIAMOND_LOG_LEVEL: process.env['DIAMOND_LOG_LEVEL'] ?? 'warn' });
const options = isolatedOrchestratorOptions('runs');
const runsTopic = options.topics.runs!;
const kafka = testKafka();
const redis = createRedis(config, { keyPrefix: options.keyPrefix });
const tokens = new TokenStore(redis);
const runners: string[] = [];
let viewer = '';
let api: ControlApi;

const records: HistoryRecord[] = [];
const feedback: HistoryFeedback[] = [];
const record = (id: string, customer: string, daysAgo: number, amount: number | null, currency: string | null): void => {
  records.push(historyRecord(id, customer, daysAgo, amount, currency, now));
};
const feedbackOf = (id: string, customer: string, daysAgo: number, kind: string): void => {
  feedback.push(historyFeedback(id, customer, daysAgo, kind, now));
};
record('a1', 'acme', 0.5, 10.25, 'EUR');
record('a2', 'acme', 1.5, 20, 'EUR');
record('a3', 'acme', 2.5, 5.5, 'USD');
record('a4', 'acme', 3.5, null, null);
record('a5', 'acme', 6.5, 7, 'USD');
record('a-old', 'acme', 9, 1000, 'EUR'); // before since=7d
record('g1', 'globex', 1, 99, 'EUR'); // another customer
feedbackOf('f1', 'acme', 1, 'anomaly');
feedbackOf('f2', 'acme', 2, 'anomaly');
feedbackOf('f3', 'acme', 3, 'quality');
feedbackOf('f-old', 'acme', 10, 'quality');
feedbackOf('fg', 'globex', 1, 'anomaly');

const expectedSummaryOf = (customer: string, since: number): ReturnType<typeof expectedSummary> => expectedSummary(records, feedback, customer, since);

test.before(async () => {
  await writeHistory(history, records, feedback);
  await redis.connect();
  // /metrics reads the input topic's offsets: it must exist (nothing is produced to it).
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: options.topics.input, partitions: 1 }]);
  await admin.disconnect();
  api = await startControlApi(config, { options, logger: createLogger(config, { fd: 2, bindings: { test: 'orchestrator-runs' } }), endpoints: platformEndpoints(config) }, { port: 0, heartbeatMs: 500 });
  for (let i = 0; i < 8; i++) runners.push(await tokens.add('runner', `runner-${i}`));
  viewer = await tokens.add('viewer', 'viewer');
});

test.after.always(async () => {
  await api?.close();
  const raw = createRedis(config);
  const keys = await raw.keys(`${options.keyPrefix}*`);
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
  redis.disconnect();
  rmSync(history, { recursive: true, force: true });
});

interface Answer { status: number; body: { run?: RunRecord; runs?: RunRecord[]; error?: string; code?: string; hint?: string } }

async function call(method: string, path: string, token: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${api.url}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

const runFn = (fn: string, params: Record<string, unknown>, token = runners[0]!, wait = '120s'): Promise<Answer> => call('POST', `/v1/runs${wait ? `?wait=${wait}` : ''}`, token, { function: fn, params });

test.serial('a sync run of customer_summary returns the summary computed from the history the test wrote', async (t) => {
  const started = Date.now();
  const answer = await runFn('customer_insights.customer_summary', { customer_id: 'acme', since: '7d' });
  t.log(`first run (cold session) ${Date.now() - started} ms`);
  t.is(answer.status, 200, JSON.stringify(answer.body));
  const run = answer.body.run!;
  t.is(run.state, 'finished', JSON.stringify(run.error));
  t.is(run.by, 'runner-0');
  const since = Date.parse(String(run.params['since']));
  t.true(Math.abs(since - (Date.parse(run.queuedAt) - 7 * DAY)) < 2000, 'since=7d is 7 days before the run was queued');
  t.like(run.result, { kind: 'value', value: { customer_id: 'acme', ...expectedSummaryOf('acme', since) } });
  const warm = Date.now();
  const again = await runFn('customer_insights.customer_summary', { customer_id: 'globex', since: '7d' });
  t.log(`warm run ${Date.now() - warm} ms`);
  t.like(again.body.run?.result, { kind: 'value', value: expectedSummaryOf('globex', since) });
});

test.serial('bad params are 400 naming the parameter and type, an unknown function 404, a viewer 403; nothing is queued', async (t) => {
  const fn = 'customer_insights.customer_summary';
  const before = (await call('GET', `/v1/runs?function=${fn}`, viewer)).body.runs?.length;
  const missing = await runFn(fn, { since: '7d' });
  t.is(missing.status, 400);
  t.regex(missing.body.error ?? '', /params\.customer_id is missing/);
  t.regex(missing.body.hint ?? '', /string/);
  const wrong = await runFn(fn, { customer_id: 'acme', since: 'last tuesday' });
  t.is(wrong.status, 400);
  t.regex(wrong.body.error ?? '', /params\.since .* not timestamp/);
  t.regex(wrong.body.hint ?? '', /ISO-8601/);
  const extra = await runFn(fn, { customer_id: 'acme', limit: 3 });
  t.is(extra.status, 400);
  t.regex(extra.body.error ?? '', /params\.limit is not a parameter/);
  const unknown = await runFn('customer_insights.nope', {});
  t.is(unknown.status, 404);
  t.regex(unknown.body.hint ?? '', /customer_insights\.customer_summary/);
  t.is((await runFn(fn, { customer_id: 'acme' }, viewer)).status, 403);
  t.is((await call('GET', `/v1/runs?function=${fn}`, viewer)).body.runs?.length, before, 'nothing was queued');
});

async function sseUntilEnd(path: string, token: string, timeoutMs = 120_000): Promise<SseMessage[]> {
  const response = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) });
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const messages: SseMessage[] = [];
  for await (const chunk of response.body!) messages.push(...parser.push(decoder.decode(chunk as Uint8Array, { stream: true })));
  return messages;
}

test.serial('an async run answers 202 and goes queued → started → finished on diamond.runs and over SSE', async (t) => {
  const answer = await runFn('customer_insights.customer_summary', { customer_id: 'acme' }, runners[1], '');
  t.is(answer.status, 202);
  const id = answer.body.run!.id;
  t.true(['queued', 'running'].includes(answer.body.run!.state));
  const sse = await sseUntilEnd(`/v1/runs/${id}/events`, viewer);
  const sseEvents = sse.map((m) => JSON.parse(m.data) as { event: string; run?: RunRecord });
  t.deepEqual(sseEvents.map((e) => e.event), ['queued', 'started', 'finished']);
  t.is(sseEvents.at(-1)?.run?.state, 'finished');
  const onKafka = await consumeUntil(kafka, runsTopic, (messages) => messages.some((m) => m.key === id && (JSON.parse(m.value!.toString()) as { event?: string }).event === 'finished'), 60_000);
  const mine = onKafka.filter((m) => m.key === id).map((m) => {
    const parsed = parseRunEvent(m.value!.toString());
    if (!parsed.ok) throw new Error(`${parsed.field} ${parsed.problem}`);
    return parsed.message;
  });
  t.deepEqual(mine.map((e: RunEventMessage) => e.event), ['queued', 'started', 'finished']);
  t.is(mine[0]?.by, 'runner-1');
  t.like((await call('GET', `/v1/runs/${id}`, viewer)).body.run, { state: 'finished', function: 'customer_insights.customer_summary' });
});

function cli(args: readonly string[], token: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['infra/cli/bin.js', ...args], { cwd: config.projectRoot, env: { ...process.env, DIAMOND_LOG_LEVEL: 'warn', DIAMOND_CONTROL_URL: api.url, DIAMOND_TOKEN: token }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

test.serial('diamond run prints the result for people, --json the run; a bad param is an error saying what to give', async (t) => {
  const human = await cli(['run', 'customer_insights.customer_summary', '--param', 'customer_id=acme', '--param', 'since=7d'], runners[2]!);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /"customer_id": "acme"[\s\S]*"records": 5[\s\S]*finished in \d+ ms/);
  const json = await cli(['run', 'customer_insights.customer_summary', '-p', 'customer_id=globex', '--json'], runners[2]!);
  t.is(json.code, 0, json.stderr);
  t.like(JSON.parse(json.stdout) as RunRecord, { state: 'finished', by: 'runner-2' });
  const bad = await cli(['run', 'customer_insights.customer_summary', '--param', 'since=7d'], runners[2]!);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /params\.customer_id is missing[\s\S]*customer_id is string/);
});

test.serial("a run that raises is failed with the user's file and line", async (t) => {
  const answer = await runFn('run_fixtures.boom', {});
  t.is(answer.status, 200);
  const run = answer.body.run!;
  t.is(run.state, 'failed');
  t.is(run.error?.code, 'user_code');
  t.regex(run.error?.file ?? '', /functions\.py$/);
  t.is(run.error?.line, 9);
  t.regex(run.error?.message ?? '', /ZeroDivisionError|division/);
});

test.serial('eight concurrent runs from eight tokens each get their own result', async (t) => {
  const answers = await Promise.all(runners.map((token, i) => runFn('run_fixtures.echo', { caller: `caller-${i}`, every: '30s' }, token)));
  for (const [i, answer] of answers.entries()) {
    t.is(answer.status, 200);
    t.is(answer.body.run?.by, `runner-${i}`);
    t.like(answer.body.run?.result, { kind: 'value', value: { caller: `caller-${i}`, every_s: 30, answer: 42, run_id: answer.body.run?.id } });
  }
  t.is(new Set(answers.map((a) => a.body.run?.id)).size, 8);
});

const runState = async (id: string, done: (run: RunRecord) => boolean, timeoutMs = 120_000): Promise<RunRecord> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = (await call('GET', `/v1/runs/${id}`, viewer)).body.run!;
    if (done(run)) return run;
    if (Date.now() > deadline) throw new Error(`run ${id} is ${run.state}, not done within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
};

test.serial('DELETE cancels a running Spark job: the run is cancelled, its session freed (not replaced), the next run works there', async (t) => {
  const posted = await runFn('run_fixtures.spin', {}, runners[1], '');
  t.is(posted.status, 202);
  const id = posted.body.run!.id;
  const running = await runState(id, (run) => run.state === 'running');
  await new Promise((resolve) => setTimeout(resolve, 2000)); // its Spark job under way
  const underway = await runState(id, () => true);
  t.is(underway.state, 'running', `still running (it would run for minutes): ${JSON.stringify(underway.error)}`);
  const deleted = await call('DELETE', `/v1/runs/${id}`, runners[1]!);
  t.true([200, 202].includes(deleted.status), JSON.stringify(deleted.body));
  const cancelled = await runState(id, (run) => !['queued', 'running'].includes(run.state));
  t.is(cancelled.state, 'cancelled', JSON.stringify(cancelled.error));
  const next = await runFn('run_fixtures.echo', { caller: 'after-cancel' });
  t.is(next.body.run?.state, 'finished', JSON.stringify(next.body.run?.error));
  t.is(next.body.run?.session, running.session, 'the cancelled job freed the session within the kill grace: it was not killed');
});

test.serial('an exclusive run gets a session of its own, stopped when the run ends; shared runs never go there', async (t) => {
  const shared = (await runFn('run_fixtures.echo', { caller: 'shared-before' })).body.run!;
  const answer = await runFn('run_fixtures.alone', {}, runners[2], '300s');
  const run = answer.body.run!;
  t.is(run.state, 'finished', JSON.stringify(run.error));
  t.like(run.result, { kind: 'value', value: { answer: 42, run_id: run.id } });
  t.truthy(run.session);
  t.not(run.session, shared.session, 'not the shared session');
  const gone = Date.now() + 60_000;
  while (findProcesses(new RegExp(run.session!)).length > 0 && Date.now() < gone) await new Promise((resolve) => setTimeout(resolve, 300));
  t.deepEqual(findProcesses(new RegExp(run.session!)), [], 'the exclusive session is stopped once its run ended');
  t.true(findProcesses(new RegExp(shared.session!)).length > 0, 'the shared session still runs');
  const after = (await runFn('run_fixtures.echo', { caller: 'shared-after' })).body.run!;
  t.is(after.session, shared.session);
});

interface SqlReply { status: number; body: { query?: { columns: { name: string }[]; rows: unknown[][]; truncated: boolean; timings: { totalMs: number }; cache: { days: number } }; code?: string; error?: string } }
const sql = async (text: string, token = runners[3]!, limit?: number): Promise<SqlReply> => await call('POST', '/v1/sql', token, limit === undefined ? { sql: text } : { sql: text, limit });

test.serial('interactive SQL answers from the cached recent days and the whole history, read-only', async (t) => {
  const days = config.sql.cacheDays;
  const firstDay = new Date(now - (days - 1) * DAY).toISOString().slice(0, 10);
  const inWindow = records.filter((r) => new Date(r.event_time).toISOString().slice(0, 10) >= firstDay);
  const expected = [...new Set(inWindow.map((r) => r.customer_id))].sort().map((customer) => {
    const mine = inWindow.filter((r) => r.customer_id === customer);
    return [customer, mine.length, Math.round(mine.reduce((sum, r) => sum + (r.amount ?? 0), 0) * 100) / 100];
  });
  t.true(inWindow.length < records.length, 'the test has records older than the cached window');
  const recent = await sql('SELECT customer_id, count(*) AS n, round(sum(coalesce(amount, 0)), 2) AS spend FROM records GROUP BY customer_id ORDER BY customer_id');
  t.is(recent.status, 200, JSON.stringify(recent.body));
  t.deepEqual(recent.body.query?.columns.map((c) => c.name), ['customer_id', 'n', 'spend']);
  t.deepEqual(recent.body.query?.rows, expected);
  t.is(recent.body.query?.cache.days, days);
  const all = await sql('SELECT count(*) FROM records_all');
  t.deepEqual(all.body.query?.rows, [[records.length]]);
  const timings: number[] = [];
  for (let i = 0; i < 5; i++) timings.push((await sql("SELECT kind, count(*) FROM feedback WHERE customer_id = 'acme' GROUP BY kind")).body.query?.timings.totalMs ?? -1);
  t.log(`warm SQL over the cached window: ${timings.join(', ')} ms`);
  const limited = await sql('SELECT record_id FROM records_all ORDER BY record_id', runners[3], 2);
  t.like(limited.body.query, { rows: [['a-old'], ['a1']], truncated: true });
  const refused = await sql('DROP VIEW records');
  t.is(refused.status, 400);
  t.is(refused.body.code, 'DIAMOND_SQL_REFUSED');
  t.regex(refused.body.error ?? '', /DropView is not a query/);
  const invalid = await sql('SELECT nope FROM records');
  t.is(invalid.status, 400);
  t.is(invalid.body.code, 'DIAMOND_SQL_INVALID');
  t.regex(invalid.body.error ?? '', /nope/);
  t.is((await sql('SELECT 1', viewer)).status, 403);
  t.deepEqual((await sql('SELECT count(*) FROM records_all')).body.query?.rows, [[records.length]], 'the refused DROP changed nothing');
  const human = await cli(['sql', 'SELECT count(*) AS n FROM feedback_all'], runners[3]!);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, new RegExp(`^n\\s*\\n${feedback.length}\\s*\\n\\(1 rows; \\d+ ms; cache of ${days} days`));
});

test.serial('a run over its timeout is timed-out, its stuck session killed and replaced, and the next run works', async (t) => {
  const started = Date.now();
  const answer = await runFn('run_fixtures.hang', { seconds: 600 });
  t.is(answer.body.run?.state, 'timed-out', JSON.stringify(answer.body));
  t.is(answer.body.run?.error?.code, 'run_timeout');
  t.true(Date.now() - started < 60_000);
  const next = await runFn('run_fixtures.echo', { caller: 'after-timeout' });
  t.is(next.body.run?.state, 'finished', JSON.stringify(next.body.run?.error));
  t.not(next.body.run?.session, answer.body.run?.session, 'a new session serves the next run');
  const metrics = await (await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${viewer}` } })).text();
  t.regex(metrics, /diamond_runs_total\{function="run_fixtures\.hang",state="timed-out"\} 1/);
  t.regex(metrics, /diamond_run_duration_seconds_count\{function="customer_insights\.customer_summary"\} [1-9]/);
});
