/**
 * `npm run bench -- upstream`: the same records through (a) a bare kafkajs producer (Avro
 * encoded beforehand, same producer settings: idempotent, acks=all) and (b) the HTTP ingest
 * path (NDJSON → split → validate → normalize → encode → produce → 202), in one run.
 * Prints records/s of each, the ratio (target ≥ 0.8) and the ingest service's peak memory.
 * Env: BENCH_RECORDS (default 200000), BENCH_BATCH (1000), BENCH_CONCURRENCY (4), BENCH_PROFILE (a directory).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { loadConfig } from '../../shared/config.ts';
import { createKafka, ensureTopics } from '../../shared/kafka.ts';
import { createRedis } from '../../shared/redis.ts';
import { createRegistry } from '../../shared/registry.ts';
import { createRecordEncoder } from '../../upstream/pipeline.ts';
import { normalizeRecord } from '../../upstream/normalize.ts';
import { resolveMapping } from '../../upstream/mapping.ts';
import { SourceStore } from '../../upstream/sources.ts';
import { createUpstreamProducer, registerCustomerRecord } from '../../upstream/service.ts';
import { uniqueName } from '../support/env.ts';
import { bareNodeFloorMiB, type BenchResult } from './results.ts';

const config = loadConfig(process.env);
const RECORDS = Number(process.env['BENCH_RECORDS'] ?? 200_000);
const BATCH = Number(process.env['BENCH_BATCH'] ?? 1_000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 4);

function makeRecord(n: number): Record<string, unknown> {
  return {
    record_id: `r-${n}`, customer_id: `cust-${n % 5000}`, event_time: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    type: n % 10 === 0 ? 'refund' : 'purchase', amount: `${(n % 100_000) / 100}`, currency: 'EUR', channel: 'web', store: `store-${n % 50}`,
  };
}

/** Runs `work(batchIndex)` for every batch with at most CONCURRENCY at once; returns records/s. */
async function timed(batches: number, work: (batch: number) => Promise<void>): Promise<{ seconds: number; rate: number }> {
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < batches) await work(next++);
  }));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, rate: RECORDS / seconds };
}

function peakMemoryMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kib / 1024;
}

export async function run(): Promise<BenchResult> {
  const benchStarted = performance.now();
  const suffix = uniqueName('bench');
  const subject = `${suffix}-records-value`;
  const bareTopic = `${suffix}.bare`;
  const topics = { normalized: `${suffix}.normalized`, rejected: `${suffix}.rejected` };
  const keyPrefix = `${suffix}:`;
  const records = Array.from({ length: RECORDS }, (_, n) => makeRecord(n));
  const batches = Math.ceil(RECORDS / BATCH);
  const bodies = Array.from({ length: batches }, (_, b) => Buffer.from(records.slice(b * BATCH, (b + 1) * BATCH).map((r) => JSON.stringify(r)).join('\n')));

  const kafka = createKafka(config, { clientId: suffix });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: bareTopic }, { topic: topics.normalized }, { topic: topics.rejected }]);

  // (a) bare kafkajs: records normalized and Avro-encoded beforehand, only the produce is timed.
  const registry = createRegistry(config);
  const encoder = await createRecordEncoder(registry, await registerCustomerRecord(registry, subject));
  const mapping = resolveMapping();
  const encoded = records.map((record) => {
    const result = normalizeRecord(record, { source: 'bench', mapping, ingestedAt: Date.now() });
    if (!result.ok) throw new Error(`bench record rejected: ${JSON.stringify(result.reasons)}`);
    return { key: result.record.customer_id, value: encoder.encode(result.record) };
  });
  const producer = createUpstreamProducer(kafka);
  await producer.connect();
  await producer.send({ topic: bareTopic, acks: -1, messages: encoded.slice(0, 10) }); // warm-up: metadata, producer id
  const bare = await timed(batches, async (b) => {
    await producer.send({ topic: bareTopic, acks: -1, messages: encoded.slice(b * BATCH, (b + 1) * BATCH) });
  });
  await producer.disconnect();

  // (b) the HTTP ingest path, the service in its own process.
  const redis = createRedis(config, { keyPrefix });
  await redis.connect();
  const { apiKey } = await new SourceStore(redis).add('bench');
  // BENCH_PROFILE=<dir> writes a CPU profile of the ingest service there (open it in Chrome DevTools).
  const profile = process.env['BENCH_PROFILE'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_PROFILE']}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'test/bench/upstream-server.ts', JSON.stringify({ topics, subject, redisKeyPrefix: keyPrefix })], {
    cwd: config.projectRoot, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DIAMOND_LOG_LEVEL: 'warn' },
  });
  const [url] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const post = async (body: Buffer): Promise<void> => {
    const response = await fetch(`${url}/v1/records`, { method: 'POST', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/x-ndjson' }, body });
    const answer = (await response.json()) as { accepted?: number };
    if (response.status !== 202 || answer.accepted === undefined) throw new Error(`ingest answered ${response.status}: ${JSON.stringify(answer)}`);
  };
  await post(Buffer.from(JSON.stringify(makeRecord(-1)))); // warm-up
  let accepted = 0;
  const http = await timed(batches, async (b) => {
    await post(bodies[b]!);
    accepted += Math.min(BATCH, RECORDS - b * BATCH);
  });
  const peak = peakMemoryMiB(child.pid!);
  child.kill('SIGTERM');
  await once(child, 'exit');

  await admin.deleteTopics({ topics: [bareTopic, topics.normalized, topics.rejected] }).catch(() => undefined);
  await admin.disconnect();
  await redis.del('source:bench');
  redis.disconnect();
  // Memory baseline: the same runtime and clients, idle (what any Node ingest service starts from).
  const floor = await bareNodeFloorMiB(config.projectRoot, ['kafka', 'redis']);

  const line = (name: string, result: { seconds: number; rate: number }): string => `  ${name.padEnd(34)} ${Math.round(result.rate).toLocaleString('en').padStart(9)} records/s  (${result.seconds.toFixed(2)} s)`;
  process.stdout.write([
    `upstream bench: ${RECORDS.toLocaleString('en')} records, batches of ${BATCH}, ${CONCURRENCY} in parallel, acks=all, idempotent`,
    line('(a) bare kafkajs producer', bare),
    line('(b) HTTP ingest (NDJSON → Avro)', http),
    `  ratio b/a                          ${(http.rate / bare.rate).toFixed(2)}  (target ≥ 0.8)`,
    `  ingest service peak memory (VmHWM) ${peak.toFixed(0)} MiB  (idle Node + kafkajs + ioredis: ${floor.toFixed(0)} MiB)`,
    `  accepted via HTTP                  ${accepted.toLocaleString('en')}`,
    '',
  ].join('\n'));
  return {
    bench: 'upstream',
    seconds: (performance.now() - benchStarted) / 1000,
    rows: [
      { component: 'upstream', metric: 'throughput, HTTP ingest (NDJSON → Avro → Kafka)', unit: 'records/s', value: http.rate, baseline: bare.rate, baselineIs: 'bare kafkajs producer, pre-encoded Avro', better: 'higher', target: '≥ 0.8' },
      { component: 'upstream', metric: 'peak memory, ingest service (VmHWM)', unit: 'MiB', value: peak, baseline: floor, baselineIs: 'idle Node+tsx, kafkajs+ioredis connected', better: 'lower' },
    ],
    refs: { 'bare kafkajs producer': bare.rate },
    details: { records: RECORDS, batch: BATCH, concurrency: CONCURRENCY, accepted },
  };
}
