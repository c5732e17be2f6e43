/**
 * `npm run bench -- runs` (issue 16, "Done when"): on-demand functions and interactive SQL
 * over a history of BENCH_RUNS_RECORDS (1,000,000) records and a tenth as many feedback rows,
 * 30 days, 200 customers, written as the archiver lays it out (Parquet by day).
 *
 *   sync customer_summary  POST /v1/runs?wait= of customer_insights.customer_summary (since 7d,
 *                          a different customer each call) on a warm shared session, measured
 *                          by the client: p50 and p99. Baseline: the same function's code on the
 *                          same Parquet in a bare warm SparkSession with the session's settings
 *                          (test/bench/bare_history_queries.py), no platform in between.
 *   POST → started         the run record's startedAt − queuedAt with a free session (the queue,
 *                          Redis writes and the queued event before the session is asked).
 *   interactive SQL        POST /v1/sql of an aggregation over the cached recent window, p50;
 *                          baseline: the same SQL on the same cached window in the bare session.
 *
 * Like-for-like: same data, same code, same Spark settings; both sides warmed up first (the
 * first calls compile and fill caches), then two rounds in alternating order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfig } from '../../shared/config.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { createRedis } from '../../shared/redis.ts';
import { sparkSubmit } from '../../shared/runtime-paths.ts';
import { startControlApi } from '../../infra/orchestrator/control-api.ts';
import type { RunRecord } from '../../infra/orchestrator/run-store.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';
import { testKafka } from '../support/env.ts';
import { runPython } from '../support/python.ts';
import { out, percentile, type BenchResult } from './results.ts';

const RECORDS = Number(process.env['BENCH_RUNS_RECORDS'] ?? 1_000_000);
const CALLS = Number(process.env['BENCH_RUNS_CALLS'] ?? 30);
const CUSTOMERS = 200;
const DAY = 86_400_000;
const SQL = 'SELECT currency, count(*) AS n, round(sum(amount), 2) AS spend FROM records GROUP BY currency ORDER BY n DESC';

/** 30 days of records and feedback, in the archiver's layout, generated in Python (pyarrow). */
const WRITE_HISTORY = `
import json, os, sys, random, datetime as dt
import pyarrow as pa, pyarrow.parquet as pq
body = json.load(sys.stdin)
random.seed(7)
now = body["now"]; n = body["records"]; customers = body["customers"]; day_ms = 86400000
ts = pa.timestamp("ms", tz="UTC")
def write(view, columns, types):
    times = columns["event_time"]
    days = {}
    for i, t in enumerate(times):
        days.setdefault(dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc).date().isoformat(), []).append(i)
    for day, rows in days.items():
        folder = os.path.join(body["dir"], view, "day=" + day)
        os.makedirs(folder, exist_ok=True)
        table = pa.table({k: pa.array([v[i] for i in rows], type=types.get(k, pa.string())) for k, v in columns.items()})
        pq.write_table(table, os.path.join(folder, "part-0.parquet"))
times = [now - int(random.random() * 30 * day_ms) for _ in range(n)]
currencies = ["EUR", "USD", "GBP", None]
write("records", {
    "record_id": [f"r{i}" for i in range(n)], "customer_id": [f"customer-{i % customers}" for i in range(n)],
    "source": ["bench"] * n, "event_time": times, "type": ["purchase"] * n,
    "amount": [round(random.random() * 100, 2) for _ in range(n)], "currency": [currencies[i % 4] for i in range(n)], "ingested_at": times,
}, {"event_time": ts, "ingested_at": ts, "amount": pa.float64()})
m = n // 10
ftimes = [now - int(random.random() * 30 * day_ms) for _ in range(m)]
kinds = ["anomaly", "quality", "spike"]
write("feedback", {
    "feedback_id": [f"f{i}" for i in range(m)], "customer_id": [f"customer-{i % customers}" for i in range(m)], "usecase": ["data_quality"] * m,
    "variant": ["A"] * m, "version": ["v1"] * m, "kind": [kinds[i % 3] for i in range(m)], "severity": ["warning"] * m, "score": [1.0] * m,
    "message": ["m"] * m, "record_ids": [[]] * m, "event_time": ftimes, "produced_at": ftimes,
}, {"event_time": ts, "produced_at": ts, "score": pa.float64(), "record_ids": pa.list_(pa.string())})
for root, dirs, files in os.walk(body["dir"]):
    for name in dirs + files:
        os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
`;

/** The bare SparkSession: one JSON command per POST. */
class BareSession {
  private constructor(private readonly child: ChildProcess, private readonly url: string) {}

  static async start(history: string, cacheDays: number, folder: string): Promise<BareSession> {
    const config = loadConfig(process.env);
    const submit = sparkSubmit(config, join(config.projectRoot, 'test', 'bench', 'bare_history_queries.py'), [history, String(cacheDays), folder]);
    const child = spawn(submit.command, submit.args, { env: submit.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const lines = createInterface({ input: child.stdout });
    const ready = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line.includes('"ready"')) resolve(line);
      });
      child.once('exit', (code) => reject(new Error(`the bare session exited ${code}: ${stderr}`)));
    });
    const { port } = JSON.parse(ready) as { port: number };
    return new BareSession(child, `http://127.0.0.1:${port}/`);
  }

  async ask(command: Record<string, unknown>): Promise<{ ms: number; result?: unknown; rows?: unknown[][] }> {
    const response = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(command) });
    return (await response.json()) as { ms: number; result?: unknown; rows?: unknown[][] };
  }

  stop(): void {
    // Its own process group: spark-submit's JVM and the Python driver.
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const round1 = (ms: number): number => Math.round(ms * 10) / 10;
const p = (values: readonly number[], q: number): number => round1(percentile([...values].sort((a, b) => a - b), q));

export async function run(): Promise<BenchResult> {
  const began = Date.now();
  const history = mkdtempSync(join(tmpdir(), 'diamond-bench-history-'));
  chmodSync(history, 0o755);
  const config = loadConfig({ ...process.env, DIAMOND_HISTORY_DIR: history, DIAMOND_LOG_LEVEL: process.env['DIAMOND_LOG_LEVEL'] ?? 'warn' });
  const options = isolatedOrchestratorOptions('bench-runs');
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  let bare: BareSession | null = null;
  let api: Awaited<ReturnType<typeof startControlApi>> | null = null;
  try {
    const writeStarted = Date.now();
    const written = await runPython(['-c', WRITE_HISTORY], JSON.stringify({ dir: history, records: RECORDS, customers: CUSTOMERS, now: Date.now() }));
    if (written.code !== 0) throw new Error(`writing the history failed: ${written.stderr}`);
    out(`history: ${RECORDS} records, ${RECORDS / 10} feedback over 30 days written in ${((Date.now() - writeStarted) / 1000).toFixed(1)} s`);
    await redis.connect();
    const admin = testKafka().admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic: options.topics.input, partitions: 1 }]);
    await admin.disconnect();
    api = await startControlApi(config, { options, logger: createLogger(config, { fd: 2, bindings: { bench: 'runs' } }), endpoints: platformEndpoints(config) }, { port: 0 });
    const token = await new TokenStore(redis).add('runner', 'bench-runner');
    const url = api.url;
    const post = async <T>(path: string, body: unknown): Promise<T> => {
      const response = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
      return (await response.json()) as T;
    };
    const folder = join(config.projectRoot, 'usecases', 'customer_insights');
    const since = (): string => new Date(Date.now() - 7 * DAY).toISOString();
    const diamondSummary = async (i: number): Promise<{ ms: number; toStartMs: number; result: unknown }> => {
      const t0 = performance.now();
      const { run: record } = await post<{ run: RunRecord }>('/v1/runs?wait=60s', { function: 'customer_insights.customer_summary', params: { customer_id: `customer-${i % CUSTOMERS}`, since: since() } });
      if (record.state !== 'finished') throw new Error(`run ${record.id} ${record.state}: ${JSON.stringify(record.error)}`);
      return { ms: performance.now() - t0, toStartMs: Date.parse(record.startedAt!) - Date.parse(record.queuedAt), result: record.result };
    };
    const diamondSql = async (): Promise<{ ms: number; rows: unknown[][] }> => {
      const t0 = performance.now();
      const { query } = await post<{ query: { rows: unknown[][] } }>('/v1/sql', { sql: SQL });
      return { ms: performance.now() - t0, rows: query.rows };
    };

    const sessionStarted = Date.now();
    await diamondSummary(0);
    out(`function session: first run (cold start) ${((Date.now() - sessionStarted) / 1000).toFixed(1)} s`);
    const bareStarted = Date.now();
    bare = await BareSession.start(history, config.sql.cacheDays, folder);
    out(`bare session ready in ${((Date.now() - bareStarted) / 1000).toFixed(1)} s`);
    for (let i = 1; i <= 5; i++) {
      await diamondSummary(i);
      await bare.ask({ summary: { customer_id: `customer-${i}`, since: since() } });
      await diamondSql();
      await bare.ask({ sql: SQL });
    }
    // Same answers on both sides, or the comparison means nothing.
    const check = await diamondSummary(42);
    const bareCheck = await bare.ask({ summary: { customer_id: 'customer-42', since: since() } });
    const strip = (value: unknown): unknown => ({ ...(value as { value: Record<string, unknown> }).value, since: null });
    if (JSON.stringify(strip(check.result)) !== JSON.stringify({ ...(bareCheck.result as Record<string, unknown>), since: null })) {
      throw new Error(`the platform and the bare session disagree: ${JSON.stringify(check.result)} vs ${JSON.stringify(bareCheck.result)}`);
    }

    const runs = { diamond: [] as number[], bare: [] as number[], toStart: [] as number[], sql: [] as number[], bareSql: [] as number[] };
    for (const order of [['diamond', 'bare'], ['bare', 'diamond']] as const) {
      for (const side of order) {
        for (let i = 0; i < CALLS; i++) {
          const customer = 100 + i;
          if (side === 'diamond') {
            const answer = await diamondSummary(customer);
            runs.diamond.push(answer.ms);
            runs.toStart.push(answer.toStartMs);
            if (i % 3 === 0) runs.sql.push((await diamondSql()).ms);
          } else {
            runs.bare.push((await bare.ask({ summary: { customer_id: `customer-${customer}`, since: since() } })).ms);
            if (i % 3 === 0) runs.bareSql.push((await bare.ask({ sql: SQL })).ms);
          }
        }
      }
    }
    out(`customer_summary p50/p99: platform ${p(runs.diamond, 50)} / ${p(runs.diamond, 99)} ms, bare ${p(runs.bare, 50)} / ${p(runs.bare, 99)} ms (${runs.diamond.length} calls each)`);
    out(`POST → started p50/p99: ${p(runs.toStart, 50)} / ${p(runs.toStart, 99)} ms`);
    out(`SQL over the cached ${config.sql.cacheDays} days p50: platform ${p(runs.sql, 50)} ms, bare ${p(runs.bareSql, 50)} ms`);
    return {
      bench: 'runs',
      seconds: (Date.now() - began) / 1000,
      rows: [
        { component: 'runs', metric: `sync customer_summary p50 (${RECORDS / 1e6}M records)`, unit: 'ms', value: p(runs.diamond, 50), baseline: p(runs.bare, 50), baselineIs: 'the same code in a bare warm SparkSession', better: 'lower', target: '≤ 1000 ms' },
        { component: 'runs', metric: `sync customer_summary p99 (${RECORDS / 1e6}M records)`, unit: 'ms', value: p(runs.diamond, 99), baseline: p(runs.bare, 99), baselineIs: 'the same code in a bare warm SparkSession', better: 'lower', target: '≤ 2000 ms' },
        { component: 'runs', metric: 'POST → started p50 (free session)', unit: 'ms', value: p(runs.toStart, 50), baseline: null, baselineIs: '(none: platform only)', better: 'lower', target: '≤ 200 ms' },
        { component: 'runs', metric: `interactive SQL p50 (cached ${config.sql.cacheDays} days)`, unit: 'ms', value: p(runs.sql, 50), baseline: p(runs.bareSql, 50), baselineIs: 'the same SQL on the same cached window, bare', better: 'lower', target: '≤ 2000 ms' },
      ],
      details: { records: RECORDS, callsPerRound: CALLS, rounds: 2, samples: runs },
    };
  } finally {
    bare?.stop();
    await api?.close();
    const raw = createRedis(config);
    const keys = await raw.keys(`${options.keyPrefix}*`).catch(() => []);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
    redis.disconnect();
    rmSync(history, { recursive: true, force: true });
  }
}
