/**
 * `npm run bench -- usecase`: one data_quality job on local[2], against a bare Spark
 * Structured Streaming Kafka→Kafka copy of the same records in the same run.
 *   1. throughput: N records preloaded, read in batches of 50,000; records/s while batches
 *      run (Σ rows / Σ batch time), leaving out the first batch, which also pays for JIT
 *      warm-up and connecting (both sides alike);
 *   2. latency: 2,000 records/s with a 500 ms trigger, 10 s of warm-up then 20 s measured,
 *      from the moment a record is sent to the moment its feedback arrives on feedback.raw
 *      (p50/p99);
 *   3. peak memory of the job's driver (JVM) and of its whole process tree, beside the bare
 *      copy's (sampled the same way).
 * The latency's baseline is the bare Spark hop (Kafka → bare Spark copy, same trigger →
 * Kafka) measured by the end-to-end bench of the same run, at the same rate.
 * Env: BENCH_USECASE_RECORDS (400000).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { sparkSubmit } from '../../shared/runtime-paths.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { CustomerRecord, Feedback } from '../../shared/schemas.ts';
import { config, consumeUntil, testKafka, uniqueName } from '../support/env.ts';
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
import { startUsecaseJob, type JobTopics } from '../support/usecase-job.ts';
import { sampleTree, type BenchResult } from './results.ts';

/** Peak RSS of a process tree in bytes (root alone and the whole tree, Python driver and workers included). */
function sampleMemory(pid: number): { stop(): { peakRootBytes: number; peakTreeBytes: number } } {
  const tree = sampleTree(pid);
  return { stop: () => { const peak = tree.stop(); return { peakRootBytes: peak.rootMiB * 2 ** 20, peakTreeBytes: peak.treeMiB * 2 ** 20 }; } };
}

const RECORDS = Number(process.env['BENCH_USECASE_RECORDS'] ?? 400_000);
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

async function bareSparkCopy(kafka: Kafka, values: Buffer[]): Promise<{ rate: number; peakDriver: number; peakTree: number }> {
  const source = uniqueName('bench-bare-in');
  const target = uniqueName('bench-bare-out');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: source, partitions: 2 }, { topic: target, partitions: 2 }]);
  await admin.disconnect();
  await preload(kafka, source, values);
  const checkpoint = mkdtempSync(join(tmpdir(), 'diamond-bench-'));
  const submit = sparkSubmit(config, join(config.projectRoot, 'test', 'integration', 'fixtures', 'copy_topic.py'), [config.kafka.brokers.join(','), source, target, checkpoint, String(PER_BATCH)]);
  let memory: ReturnType<typeof sampleMemory> | undefined;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(submit.command, submit.args, { env: submit.env });
    memory = sampleMemory(child.pid!);
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`bare Spark copy exited with ${code}`))));
  });
  const peak = memory!.stop();
  rmSync(checkpoint, { recursive: true, force: true });
  const summary = JSON.parse(output.split('\n').find((line) => line.startsWith('{"rows"')) ?? '{}') as { rows: number; busy_ms: number };
  return { rate: summary.rows / (summary.busy_ms / 1000), peakDriver: peak.peakRootBytes, peakTree: peak.peakTreeBytes };
}

async function diamondThroughput(kafka: Kafka, values: Buffer[]): Promise<{ rate: number; peakDriver: number; peakTree: number }> {
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function diamondLatency(kafka: Kafka): Promise<{ p50: number; p99: number; received: number; sent: number; peakDriver: number; batchMs: Record<string, number> }> {
  const topics = await newTopics(kafka, 'bench-lat');
  const schemaId = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'data_quality'), 'A', topics);
  const memory = sampleMemory(job.child.pid!);
  // Wait until the query runs (its first, empty batch is reported).
  await consumeUntil(kafka, topics.progress, (all) => all.some((m) => (JSON.parse(m.value!.toString()) as Progress).event === 'progress'), 300_000);

  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('bench-lat-reader') });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.output, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const arrived = Date.now();
      const feedback = (await registry.decode(message.value!)) as Feedback;
      const sent = sentAt.get(feedback.record_ids[0] ?? '');
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
    await producer.send({ topic: topics.input, acks: -1, messages: batch.map(({ key, value }) => ({ key, value })) });
    const wait = started + (tick + 1) * 50 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  await producer.disconnect();
  const measured = sentAt.size;
  const deadline = Date.now() + 60_000;
  while (latencies.length < measured && Date.now() < deadline) await sleep(200);
  await consumer.disconnect();
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
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), received: latencies.length, sent: measured, peakDriver: peak.peakRootBytes, batchMs };
}

export async function run(): Promise<BenchResult> {
  const benchStarted = performance.now();
  const kafka = testKafka();
  process.stdout.write(`usecase bench: data_quality on ${config.spark.master}, ${RECORDS.toLocaleString()} records (10% flagged)\n`);
  const schemaId = await registerContract(registry, 'CustomerRecord', uniqueName('bench-encode-value'));
  const values = await Promise.all(Array.from({ length: RECORDS }, (_, i) => registry.encode(schemaId, benchRecord(i, i % 10 === 0))));

  process.stdout.write('… bare Spark Kafka→Kafka copy (baseline)\n');
  const bareCopy = await bareSparkCopy(kafka, values);
  const bare = bareCopy.rate;
  process.stdout.write('… Diamond data_quality job, preloaded records\n');
  const diamond = await diamondThroughput(kafka, values);
  process.stdout.write(`… Diamond data_quality job, ${RATE} records/s for ${WARMUP_SECONDS} s warm-up + ${RATE_SECONDS} s measured, 500 ms trigger\n`);
  const latency = await diamondLatency(kafka);

  const rows = [
    ['bare Spark copy (records/s)', bare.toFixed(0), ''],
    ['data_quality job (records/s)', diamond.rate.toFixed(0), `ratio ${(diamond.rate / bare).toFixed(2)} (target ≥ 20,000 records/s)`],
    [`latency p50 at ${RATE}/s (ms)`, String(latency.p50), `${latency.received}/${latency.sent} feedback rows received`],
    [`latency p99 at ${RATE}/s (ms)`, String(latency.p99), 'target ≤ 3,000 ms'],
    ['driver JVM peak RSS', mib(Math.max(diamond.peakDriver, latency.peakDriver)), 'target ≤ 1.2 GB'],
    ['job process tree peak RSS', mib(diamond.peakTree), 'driver + Python workers'],
    ['bare copy driver / tree peak RSS', `${mib(bareCopy.peakDriver)} / ${mib(bareCopy.peakTree)}`, 'baseline'],
  ];
  for (const [what, value, note] of rows) process.stdout.write(`${what!.padEnd(32)} ${value!.padStart(10)}  ${note}\n`);
  process.stdout.write(`where a batch's time goes at ${RATE}/s (mean ms): ${JSON.stringify(latency.batchMs)}\n`);
  process.stdout.write(JSON.stringify({ bench: 'usecase', bare_records_per_s: bare, records_per_s: diamond.rate, ratio: diamond.rate / bare, latency_p50_ms: latency.p50, latency_p99_ms: latency.p99, driver_peak_bytes: Math.max(diamond.peakDriver, latency.peakDriver), tree_peak_bytes: diamond.peakTree, batch_ms: latency.batchMs }) + '\n');
  const driverPeak = Math.max(diamond.peakDriver, latency.peakDriver) / 2 ** 20;
  const hop = 'bare Spark hop, same trigger (e2e bench)';
  return {
    bench: 'usecase',
    seconds: (performance.now() - benchStarted) / 1000,
    rows: [
      { component: 'use case job', metric: 'throughput, data_quality (preloaded)', unit: 'records/s', value: diamond.rate, baseline: bare, baselineIs: 'bare Spark Kafka→Kafka copy', better: 'higher', target: '≥ 20,000 rec/s' },
      { component: 'use case job', metric: `latency p50 @ ${RATE.toLocaleString('en')}/s, Kafka→job→Kafka`, unit: 'ms', value: latency.p50, baseline: null, baselineRefs: ['bare Spark hop p50 @ 2000/s'], baselineIs: hop, better: 'lower' },
      { component: 'use case job', metric: `latency p99 @ ${RATE.toLocaleString('en')}/s, Kafka→job→Kafka`, unit: 'ms', value: latency.p99, baseline: null, baselineRefs: ['bare Spark hop p99 @ 2000/s'], baselineIs: hop, better: 'lower', target: '≤ 3,000 ms' },
      { component: 'use case job', metric: 'peak memory, driver JVM', unit: 'MiB', value: driverPeak, baseline: bareCopy.peakDriver / 2 ** 20, baselineIs: 'bare Spark copy, driver JVM', better: 'lower', target: '≤ 1.2 GB' },
      { component: 'use case job', metric: 'peak memory, process tree (driver + Python)', unit: 'MiB', value: diamond.peakTree / 2 ** 20, baseline: bareCopy.peakTree / 2 ** 20, baselineIs: 'bare Spark copy, process tree', better: 'lower' },
    ],
    refs: { 'bare Spark copy': bare },
    details: { records: RECORDS, perBatch: PER_BATCH, rate: RATE, latency: { ...latency }, bareCopy },
  };
}
