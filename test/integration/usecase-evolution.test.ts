/**
 * Real jobs (spark-submit) against the real Kafka and registry while the input changes under
 * them: a compatible writer version of CustomerRecord registered mid-stream decodes in the
 * running job (stateless and stateful), and the same records sent twice do not change a
 * stateful job's sums. Spark is heavy on 2 cores, so these run one at a time.
 */
import test from 'ava';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { readSchema, type CustomerRecord, type Feedback } from '../../shared/schemas.ts';
import { config, consumeAll, consumeUntil, testKafka, type ConsumedMessage } from '../support/env.ts';
import { createJobTopics, startUsecaseJob, type JobTopics, type RunningJob } from '../support/usecase-job.ts';

const registry = createRegistry(config);
const kafka = testKafka();
const MINUTE = 60_000;

interface ProgressMessage {
  event: string;
  rows_in?: number;
  rows_out?: number;
  rows_rejected?: number;
}

/** CustomerRecord v2: the contract plus an optional field with a default, registered by "someone else". */
async function registerV2(subject: string): Promise<number> {
  const current = readSchema('CustomerRecord');
  const v2 = { ...current, fields: [...current.fields, { name: 'channel', type: ['null', 'string'], default: null }] };
  const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject, compatibility: COMPATIBILITY.BACKWARD });
  return id;
}

function record(record_id: string, customer_id: string, minutesAfterTen: number, fields: Partial<CustomerRecord> = {}): CustomerRecord {
  const at = Date.UTC(2026, 10, 1, 10, 0) + minutesAfterTen * MINUTE;
  return { record_id, customer_id, source: 'test', event_time: at, type: 'purchase', amount: 10, currency: 'EUR', attributes: {}, ingested_at: at, ...fields };
}

async function produce(topic: string, schemaId: number, records: readonly object[]): Promise<void> {
  const messages = await Promise.all(records.map(async (r) => ({ key: (r as CustomerRecord).customer_id, value: await registry.encode(schemaId, r) })));
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
}

function progress(messages: ConsumedMessage[]): ProgressMessage[] {
  return messages.map((m) => JSON.parse(m.value!.toString()) as ProgressMessage).filter((m) => m.event === 'progress');
}

/** Waits until the job's progress reports count `rows` input rows in total. */
async function rowsProcessed(topics: JobTopics, rows: number, job: RunningJob): Promise<ProgressMessage[]> {
  return progress(await consumeUntil(kafka, topics.progress, (messages) => progress(messages).reduce((sum, m) => sum + (m.rows_in ?? 0), 0) >= rows, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${job.log().slice(-3000)}`);
  }));
}

async function decodeFeedback(messages: ConsumedMessage[]): Promise<Feedback[]> {
  return Promise.all(messages.map(async (m) => (await registry.decode(m.value!)) as Feedback));
}

test.serial('a writer version registered while a stateless job runs decodes: its records get feedback, none is rejected', async (t) => {
  const topics = await createJobTopics(kafka, 'evolve');
  const v1 = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  await produce(topics.input, v1, [record('v1-a', 'acme', 1, { amount: null }), record('v1-b', 'globex', 2, { amount: null })]);
  const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'data_quality'), 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  await rowsProcessed(topics, 2, job);

  // The job has built its decoder; v2 appears only now, then records written with it.
  const v2 = await registerV2(topics.recordsSubject);
  t.not(v2, v1);
  await produce(topics.input, v2, [{ ...record('v2-a', 'acme', 3, { amount: null }), channel: 'web' }, { ...record('v2-b', 'initech', 4, { amount: null }), channel: null }]);
  await produce(topics.input, v1, [record('v1-c', 'globex', 5, { amount: null })]);

  const batches = await rowsProcessed(topics, 5, job);
  // Everything on the output topic once the progress says 5 rows are done. The batch that met
  // v2 failed and ran again, and its rows of another partition may have been written by the
  // failed run too (the Kafka sink is at-least-once): copies carry the same feedback_id, and
  // the downstream writes each id once. So: every record's feedback there, nothing else.
  const admin = kafka.admin();
  await admin.connect();
  const written = (await admin.fetchTopicOffsets(topics.output)).reduce((sum, p) => sum + Number(p.high), 0);
  await admin.disconnect();
  const feedback = await decodeFeedback(await consumeAll(kafka, topics.output, written, 60_000));
  const distinct = new Map(feedback.map((f) => [f.feedback_id, f]));
  t.deepEqual([...distinct.values()].map((f) => [f.customer_id, f.record_ids.join(','), f.kind]).sort(), [
    ['acme', 'v1-a', 'missing_amount'], ['acme', 'v2-a', 'missing_amount'], ['globex', 'v1-b', 'missing_amount'],
    ['globex', 'v1-c', 'missing_amount'], ['initech', 'v2-b', 'missing_amount'],
  ]);
  t.log(`${feedback.length} messages for ${distinct.size} feedback ids`);
  t.is(batches.reduce((sum, m) => sum + (m.rows_rejected ?? 0), 0), 0, 'nothing rejected');
  t.regex(job.log(), new RegExp(`new writer schema ids.*"added": \\[${v2}\\]`), 'the job learned v2 while running');
  process.kill(await job.driverPid(), 'SIGTERM');
  t.is(await job.exited, 0, job.log().slice(-3000));
});

/** Purchases per (customer, 1-hour window sliding every 30 minutes), each record_id once: spending_spike's rule, computed here. */
function expectedSpikes(records: readonly CustomerRecord[], threshold: number): string[] {
  const unique = new Map(records.filter((r) => r.type === 'purchase' && r.amount !== null).map((r) => [`${r.customer_id}|${r.record_id}`, r]));
  const windows = new Map<string, { spend: number; ids: string[] }>();
  for (const r of unique.values()) {
    const latestStart = Math.floor(r.event_time / (30 * MINUTE)) * 30 * MINUTE;
    for (const start of [latestStart - 30 * MINUTE, latestStart]) {
      const key = `${r.customer_id}|${new Date(start).toISOString().slice(0, 16)}`;
      const window = windows.get(key) ?? { spend: 0, ids: [] };
      window.spend += r.amount!;
      window.ids.push(r.record_id);
      windows.set(key, window);
    }
  }
  return [...windows].filter(([, w]) => w.spend > threshold).map(([key, w]) => `${key} ${w.spend.toFixed(2)} ${w.ids.sort().join(',')}`).sort();
}

test.serial('stateful job: the same records sent twice sum once, and a writer version registered mid-stream counts', async (t) => {
  const topics = await createJobTopics(kafka, 'spike-dup');
  const v1 = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const first = [record('p-1', 'acme', 10, { amount: 600 }), record('p-2', 'acme', 20, { amount: 500 }), record('p-3', 'globex', 5, { amount: 400 })];
  await produce(topics.input, v1, first);
  const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'spending_spike'), 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  await rowsProcessed(topics, first.length, job);

  // A client's retry lands the same records again (a later ingested_at, same record_id) ...
  const retried = first.map((r) => ({ ...r, ingested_at: r.ingested_at + 9_000 }));
  await produce(topics.input, v1, retried);
  // ... and records of a v2 registered after the job started: globex's 700 crosses the threshold only with p-3.
  const v2 = await registerV2(topics.recordsSubject);
  const later = [{ ...record('p-4', 'globex', 15, { amount: 700 }), channel: 'web' }];
  await produce(topics.input, v2, later);
  await sleep(1_500); // separate batches, so the duplicates also meet the state of earlier ones
  // Moves the watermark past every window above so they are emitted.
  const closer = { ...record('p-5', 'initech', 180, { amount: 1 }), channel: null };
  await produce(topics.input, v2, [closer]);

  const expected = expectedSpikes([...first, ...retried, ...later, closer], 1000);
  t.is(expected.length, 4, 'acme and globex, two sliding windows each');
  const feedback = await decodeFeedback(await consumeAll(kafka, topics.output, expected.length, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${job.log().slice(-3000)}`);
  }));
  const spend = (f: Feedback): string => Number(f.details['spend']!.replace(/,/g, '')).toFixed(2);
  t.deepEqual(feedback.map((f) => `${f.customer_id}|${f.details['window_start']!.slice(0, 16)} ${spend(f)} ${f.record_ids.join(',')}`).sort(), expected);
  process.kill(await job.driverPid(), 'SIGTERM');
  t.is(await job.exited, 0, job.log().slice(-3000));
});
