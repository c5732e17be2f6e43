/**
 * `npm run bench -- usecase`: one data_quality job on local[2], against a bare Spark
 * Structured Streaming Kafka→Kafka copy of the same records (test/bench/bare_stream_copy.py,
 * the job's producer settings) in the same run.
 *   1. throughput: N records preloaded, read in batches of 50,000; records/s while batches
 *      run (Σ rows / Σ batch time), leaving out the first batch, which also pays for JIT
 *      warm-up and connecting (both sides alike);
 *   2. latency: 2,000 records/s with a 500 ms trigger, 10 s of warm-up then 20 s measured,
 *      from the moment a record is sent to the moment it arrives on the output topic
 *      (p50/p99): the job's feedback beside the bare copy's copy, same sender, same reader;
 *   3. peak memory of the job's driver (JVM) and of its whole process tree, beside the bare
 *      copy's (sampled the same way).
 * Each pair runs BENCH_USECASE_RUNS times (≥ 2), the order alternating (bare first, then
 * the job first…) so neither side always gets the cooler or the warmer machine; every figure
 * prints its minimum and median, and the table carries the medians and their ratio.
 * Env: BENCH_USECASE_RECORDS (400000), BENCH_USECASE_RUNS (2).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { sparkSubmit } from '../../shared/runtime-paths.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { CustomerRecord, Feedback } from '../../shared/schemas.ts';
import { config, consumeUntil, testKafka, uniqueName } from '../support/env.ts';
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
import { startUsecaseJob, type JobTopics } from '../support/usecase-job.ts';
import { percentile, sampleTree, type BenchResult } from './results.ts';

/** Peak RSS of a process tree in bytes (root alone and the whole tree, Python driver and workers included). */
function sampleMemory(pid: number): { stop(): { peakRootBytes: number; peakTreeBytes: number } } {
  const tree = sampleTree(pid);
  return { stop: () => { const peak = tree.stop(); return { peakRootBytes: peak.rootMiB * 2 ** 20, peakTreeBytes: peak.treeMiB * 2 ** 20 }; } };
}

const RECORDS = Number(process.env['BENCH_USECASE_RECORDS'] ?? 400_000);
const RUNS = Math.max(2, Number(process.env['BENCH_USECASE_RUNS'] ?? 2));
const PER_BATCH = 50_000;
const RATE = 2_000;
const RATE_SECONDS = 20;
/** Sent first and left out of the latency figures: the first batches pay for JIT warm-up. */
const WARMUP_SECONDS = 10;

interface Progress { event: string; rows_in?: number; end_offsets?: Record<string, number>; durations_ms?: Record<string, number> }

const registry = createRegistry(config);

async function newTopics(kafka: Kafka, prefix: string): Promise<JobTopics> {
  const topics: JobTopics = {
    input: uniqueName(`${prefix}-in`), output: uniqueName(`${prefix}-out`), rejected: uniqueName(`${prefix}-rej`),
    progress: uniqueName(`${prefix}-progress`), recordsSubject: uniqueName(`${prefix}-records-value`), feedbackSubject: uniqueName(`${prefix}-feedback-value`),
  };
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [topics.input, topics.output, topics.rejected, topics.progress].map((topic) => ({ topic, partitions: 2 })));
  await admin.disconnect();
  return topics;
}

function benchRecord(i: number, bad: boolean): CustomerRecord {
  const now = Date.now();
  return {
    record_id: `b-${i}`, customer_id: `customer-${i % 500}`, source: 'bench', event_time: now, type: 'purchase',
    amount: 10 + (i % 100), currency: bad ? null : 'EUR', attributes: { channel: 'web', campaign: `c${i % 7}` }, ingested_at: now,
  };
}

async function preload(kafka: Kafka, topic: string, values: Buffer[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  for (let i = 0; i < values.length; i += 10_000) {
    await producer.send({ topic, acks: -1, messages: values.slice(i, i + 10_000).map((value, j) => ({ key: `customer-${(i + j) % 500}`, value })) });
  }
  await producer.disconnect();
}

async function endOffsets(kafka: Kafka, topic: string): Promise<Record<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  return Object.fromEntries(offsets.map((p) => [String(p.partition), Number(p.high)]));
}

interface Throughput { rate: number; peakDriver: number; peakTree: number }

/** spark-submit of the bare copy; resolves once it prints its first line. */
function startBareCopy(source: string, target: string, checkpoint: string, trigger: string, maxOffsets?: number): { child: ChildProcess; firstLine: Promise<string>; exited: Promise<number | null> } {
  const submit = sparkSubmit(config, join(config.projectRoot, 'test', 'bench', 'bare_stream_copy.py'), [config.kafka.brokers.join(','), source, target, checkpoint, trigger, ...(maxOffsets ? [String(maxOffsets)] : [])]);
  const child = spawn(submit.command, submit.args, { env: submit.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-5000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const firstLine = Promise.race([
    once(createInterface({ input: child.stdout }), 'line').then(([line]) => String(line)),
    exited.then((code) => { throw new Error(`bare Spark copy exited with ${code}:\n${log}`); }),
  ]);
  return { child, firstLine, exited };
}

/** A fresh two-partition source and target topic for one bare-copy run. */
async function sourceAndTarget(kafka: Kafka, prefix: string): Promise<{ source: string; target: string }> {
  const source = uniqueName(`${prefix}-in`);
  const target = uniqueName(`${prefix}-out`);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: source, partitions: 2 }, { topic: target, partitions: 2 }]);
  await admin.disconnect();
  return { source, target };
}

async function bareSparkCopy(kafka: Kafka, values: Buffer[]): Promise<Throughput> {
  const { source, target } = await sourceAndTarget(kafka, 'bench-bare');
  await preload(kafka, source, values);
  const checkpoint = mkdtempSync(join(tmpdir(), 'diamond-bench-'));
  const copy = startBareCopy(source, target, checkpoint, 'available-now', PER_BATCH);
  const memory = sampleMemory(copy.child.pid!);
  const summary = JSON.parse(await copy.firstLine) as { rows: number; busy_ms: number };
  const code = await copy.exited;
  const peak = memory.stop();
  rmSync(checkpoint, { recursive: true, force: true });
  if (code !== 0) throw new Error(`bare Spark copy exited with ${code}`);
  return { rate: summary.rows / (summary.busy_ms / 1000), peakDriver: peak.peakRootBytes, peakTree: peak.peakTreeBytes };
}

async function diamondThroughput(kafka: Kafka, values: Buffer[]): Promise<Throughput> {
  const topics = await newTopics(kafka, 'bench-uc');
  await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  await preload(kafka, topics.input, values);
  const ends = await endOffsets(kafka, topics.input);
  const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'data_quality'), 'A', topics, ['--max-records-per-batch', String(PER_BATCH)]);
  const memory = sampleMemory(job.child.pid!);
  const messages = await consumeUntil(kafka, topics.progress, (all) => {
    const last = all.map((m) => JSON.parse(m.value!.toString()) as Progress).filter((m) => m.event === 'progress').at(-1);
    return JSON.stringify(last?.end_offsets) === JSON.stringify(ends);
  }, 600_000);
  const peak = memory.stop();
  process.kill(await job.driverPid(), 'SIGTERM');
  await job.exited;
  const batches = messages.map((m) => JSON.parse(m.value!.toString()) as Progress).filter((m) => m.event === 'progress' && (m.rows_in ?? 0) > 0).slice(1);
  const rows = batches.reduce((sum, m) => sum + (m.rows_in ?? 0), 0);
  const busyMs = batches.reduce((sum, m) => sum + (m.durations_ms?.['triggerExecution'] ?? 0), 0);
  return { rate: rows / (busyMs / 1000), peakDriver: peak.peakRootBytes, peakTree: peak.peakTreeBytes };
}

interface Latency { p50: number; p99: number; received: number; sent: number }

/**
 * Sends RATE records/s to `input` (WARMUP_SECONDS, then RATE_SECONDS measured) and times
 * each measured record until a message naming it arrives on `output`; `recordIdOf` reads
 * which record a message is about. Both sides of the comparison go through this.
 */
async function latencyAtRate(kafka: Kafka, input: string, output: string, schemaId: number, recordIdOf: (value: Buffer) => Promise<string | undefined>): Promise<Latency> {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('bench-lat-reader') });
  await consumer.connect();
  await consumer.subscribe({ topic: output, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const arrived = Date.now();
      const sent = sentAt.get((await recordIdOf(message.value!)) ?? '');
      if (sent !== undefined) latencies.push(arrived - sent);
    },
  });
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const perTick = RATE / 20;
  const started = Date.now();
  let i = 0;
  const warmupTicks = WARMUP_SECONDS * 20;
  for (let tick = 0; tick < (WARMUP_SECONDS + RATE_SECONDS) * 20; tick++) {
    const batch = [];
    for (let k = 0; k < perTick; k++, i++) {
      const record = benchRecord(i, true);
      batch.push({ key: record.customer_id, value: await registry.encode(schemaId, record), id: record.record_id });
    }
    const now = Date.now();
    if (tick >= warmupTicks) for (const item of batch) sentAt.set(item.id, now);
    await producer.send({ topic: input, acks: -1, messages: batch.map(({ key, value }) => ({ key, value })) });
    const wait = started + (tick + 1) * 50 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  await producer.disconnect();
  const measured = sentAt.size;
  const deadline = Date.now() + 60_000;
  while (latencies.length < measured && Date.now() < deadline) await sleep(200);
  await consumer.disconnect();
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), received: latencies.length, sent: measured };
}

async function bareLatency(kafka: Kafka): Promise<Latency> {
  const { source, target } = await sourceAndTarget(kafka, 'bench-bare-lat');
  const schemaId = await registerContract(registry, 'CustomerRecord', uniqueName('bench-bare-lat-value'));
  const checkpoint = mkdtempSync(join(tmpdir(), 'diamond-bench-'));
  const copy = startBareCopy(source, target, checkpoint, '500 milliseconds');
  try {
    await copy.firstLine;
    return await latencyAtRate(kafka, source, target, schemaId, async (value) => ((await registry.decode(value)) as CustomerRecord).record_id);
  } finally {
    copy.child.kill('SIGTERM');
    await copy.exited;
    rmSync(checkpoint, { recursive: true, force: true });
  }
}

async function diamondLatency(kafka: Kafka): Promise<Latency & { peakDriver: number; batchMs: Record<string, number> }> {
  const topics = await newTopics(kafka, 'bench-lat');
  const schemaId = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'data_quality'), 'A', topics);
  const memory = sampleMemory(job.child.pid!);
  // Wait until the query runs (its first, empty batch is reported).
  await consumeUntil(kafka, topics.progress, (all) => all.some((m) => (JSON.parse(m.value!.toString()) as Progress).event === 'progress'), 300_000);
  const latency = await latencyAtRate(kafka, topics.input, topics.output, schemaId, async (value) => ((await registry.decode(value)) as Feedback).record_ids[0]);
  const peak = memory.stop();
  process.kill(await job.driverPid(), 'SIGTERM');
  await job.exited;
  // Where a batch's time goes (mean per Spark phase over the batches that had records).
  const reports = (await consumeUntil(kafka, topics.progress, (all) => all.some((m) => (JSON.parse(m.value!.toString()) as Progress).event === 'stopped'), 60_000))
    .map((m) => JSON.parse(m.value!.toString()) as Progress).filter((m) => m.event === 'progress' && (m.rows_in ?? 0) > 0).slice(-RATE_SECONDS);
  const batchMs: Record<string, number> = { batches: reports.length, rows_per_batch: Math.round(reports.reduce((sum, m) => sum + (m.rows_in ?? 0), 0) / Math.max(1, reports.length)) };
  for (const phase of ['triggerExecution', 'addBatch', 'latestOffset', 'queryPlanning', 'walCommit', 'commitOffsets']) {
    batchMs[phase] = Math.round(reports.reduce((sum, m) => sum + (m.durations_ms?.[phase] ?? 0), 0) / Math.max(1, reports.length));
  }
  return { ...latency, peakDriver: peak.peakRootBytes, batchMs };
}

/** Runs `bare` and `diamond` RUNS times, bare first on even runs and the job first on odd ones. */
async function alternating<B, D>(what: string, bare: () => Promise<B>, diamond: () => Promise<D>): Promise<{ bare: B[]; diamond: D[] }> {
  const results = { bare: [] as B[], diamond: [] as D[] };
  for (let run = 0; run < RUNS; run++) {
    const sides = run % 2 === 0 ? (['bare', 'diamond'] as const) : (['diamond', 'bare'] as const);
    for (const side of sides) {
      process.stdout.write(`… ${what}, run ${run + 1}/${RUNS}: ${side === 'bare' ? 'bare Spark copy' : 'Diamond data_quality job'}\n`);
      if (side === 'bare') results.bare.push(await bare());
      else results.diamond.push(await diamond());
    }
  }
  return results;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const spread = (values: readonly number[]): string => `min ${Math.min(...values).toFixed(0)}, median ${median(values).toFixed(0)} (${values.map((v) => v.toFixed(0)).join(', ')})`;

export async function run(): Promise<BenchResult> {
  const benchStarted = performance.now();
  const kafka = testKafka();
  process.stdout.write(`usecase bench: data_quality on ${config.spark.master}, ${RECORDS.toLocaleString()} records (10% flagged), ${RUNS} alternating runs\n`);
  const schemaId = await registerContract(registry, 'CustomerRecord', uniqueName('bench-encode-value'));
  const values = await Promise.all(Array.from({ length: RECORDS }, (_, i) => registry.encode(schemaId, benchRecord(i, i % 10 === 0))));

  const throughput = await alternating('throughput, preloaded records', () => bareSparkCopy(kafka, values), () => diamondThroughput(kafka, values));
  const latency = await alternating(`latency at ${RATE} records/s (${WARMUP_SECONDS} s warm-up + ${RATE_SECONDS} s measured, 500 ms trigger)`, () => bareLatency(kafka), () => diamondLatency(kafka));

  const bare = median(throughput.bare.map((t) => t.rate));
  const rate = median(throughput.diamond.map((t) => t.rate));
  const p50 = median(latency.diamond.map((l) => l.p50));
  const p99 = median(latency.diamond.map((l) => l.p99));
  const hopP50 = median(latency.bare.map((l) => l.p50));
  const hopP99 = median(latency.bare.map((l) => l.p99));
  const driverPeak = Math.max(...throughput.diamond.map((t) => t.peakDriver), ...latency.diamond.map((l) => l.peakDriver));
  const treePeak = Math.max(...throughput.diamond.map((t) => t.peakTree));
  const bareDriverPeak = Math.max(...throughput.bare.map((t) => t.peakDriver));
  const bareTreePeak = Math.max(...throughput.bare.map((t) => t.peakTree));
  const received = latency.diamond.map((l) => `${l.received}/${l.sent}`).join(', ');
  const lines = [
    ['bare Spark copy (records/s)', spread(throughput.bare.map((t) => t.rate)), ''],
    ['data_quality job (records/s)', spread(throughput.diamond.map((t) => t.rate)), `ratio of medians ${(rate / bare).toFixed(2)} (target ≥ 0.8)`],
    [`bare hop p50 at ${RATE}/s (ms)`, spread(latency.bare.map((l) => l.p50)), ''],
    [`job latency p50 at ${RATE}/s (ms)`, spread(latency.diamond.map((l) => l.p50)), `ratio ${(p50 / hopP50).toFixed(2)}; ${received} feedback rows received`],
    [`bare hop p99 at ${RATE}/s (ms)`, spread(latency.bare.map((l) => l.p99)), ''],
    [`job latency p99 at ${RATE}/s (ms)`, spread(latency.diamond.map((l) => l.p99)), `ratio ${(p99 / hopP99).toFixed(2)} (target ≤ 1.2)`],
    ['driver JVM peak RSS', mib(driverPeak), `bare copy ${mib(bareDriverPeak)}`],
    ['job process tree peak RSS', mib(treePeak), `bare copy ${mib(bareTreePeak)}, ratio ${(treePeak / bareTreePeak).toFixed(2)} (target ≤ 1.5)`],
  ];
  for (const [what, value, note] of lines) process.stdout.write(`${what!.padEnd(34)} ${value!}  ${note}\n`);
  for (const [i, l] of latency.diamond.entries()) process.stdout.write(`where a batch's time goes at ${RATE}/s, run ${i + 1} (mean ms): ${JSON.stringify(l.batchMs)}\n`);
  process.stdout.write(JSON.stringify({ bench: 'usecase', runs: RUNS, bare_records_per_s: bare, records_per_s: rate, ratio: rate / bare, latency_p50_ms: p50, latency_p99_ms: p99, hop_p50_ms: hopP50, hop_p99_ms: hopP99, driver_peak_bytes: driverPeak, tree_peak_bytes: treePeak, bare_tree_peak_bytes: bareTreePeak }) + '\n');
  const hop = `bare Spark copy, same trigger and sender (median of ${RUNS})`;
  return {
    bench: 'usecase',
    seconds: (performance.now() - benchStarted) / 1000,
    rows: [
      { component: 'use case job', metric: `throughput, data_quality (preloaded; median of ${RUNS})`, unit: 'records/s', value: rate, baseline: bare, baselineIs: 'bare Spark Kafka→Kafka copy', better: 'higher', target: '≥ 0.8× bare copy' },
      { component: 'use case job', metric: `latency p50 @ ${RATE.toLocaleString('en')}/s, Kafka→job→Kafka`, unit: 'ms', value: p50, baseline: hopP50, baselineIs: hop, better: 'lower' },
      { component: 'use case job', metric: `latency p99 @ ${RATE.toLocaleString('en')}/s, Kafka→job→Kafka`, unit: 'ms', value: p99, baseline: hopP99, baselineIs: hop, better: 'lower', target: '≤ 1.2× bare hop' },
      { component: 'use case job', metric: 'peak memory, driver JVM', unit: 'MiB', value: driverPeak / 2 ** 20, baseline: bareDriverPeak / 2 ** 20, baselineIs: 'bare Spark copy, driver JVM', better: 'lower', target: '≤ 1.2 GB' },
      { component: 'use case job', metric: 'peak memory, process tree (driver + Python)', unit: 'MiB', value: treePeak / 2 ** 20, baseline: bareTreePeak / 2 ** 20, baselineIs: 'bare Spark copy, process tree', better: 'lower', target: '≤ 1.5× bare copy' },
    ],
    refs: { 'bare Spark copy': bare },
    details: { records: RECORDS, perBatch: PER_BATCH, rate: RATE, runs: RUNS, throughput, latency },
  };
}
