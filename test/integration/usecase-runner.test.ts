/**
 * The use case runner with spark-submit against the real Kafka and registry: known records
 * in, the exact feedback rows out on feedback.raw, the end offsets in the progress messages,
 * a graceful stop on SIGTERM, and a crashing use case reported with its file and line.
 * Spark is heavy on 2 cores, so these run one at a time.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { parseProgressMessage, type ProgressMessage } from '../../shared/messages.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { readSchema, type CustomerRecord, type Feedback } from '../../shared/schemas.ts';
import { config, consumeAll, consumeUntil, testKafka, type ConsumedMessage } from '../support/env.ts';
import { createJobTopics, startUsecaseJob } from '../support/usecase-job.ts';

const registry = createRegistry(config);
const kafka = testKafka();

function record(record_id: string, customer_id: string, fields: Partial<CustomerRecord> = {}): CustomerRecord {
  const at = Date.UTC(2026, 10, 1, 10, 10);
  return { record_id, customer_id, source: 'test', event_time: at, type: 'purchase', amount: 10, currency: 'EUR', attributes: {}, ingested_at: at, ...fields };
}

async function produce(topic: string, messages: { key: string; value: Buffer }[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
}

function progress(messages: ConsumedMessage[]): ProgressMessage[] {
  // Every report of the real runner must satisfy the contract the orchestrator parses with.
  return messages.map((m) => {
    const parsed = parseProgressMessage(m.value);
    if (!parsed.ok) throw new Error(`the runner sent a progress message that breaks progress.schema.json: ${parsed.field} ${parsed.problem}: ${m.value?.toString()}`);
    return parsed.message;
  });
}

async function endOffsets(topic: string): Promise<Record<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  return Object.fromEntries(offsets.map((p) => [String(p.partition), Number(p.high)]));
}

/** What the SDK promises for feedback_id, computed independently. */
function expectedFeedbackId(usecase: string, variant: string, key: string, kind: string): string {
  return createHash('sha256').update([usecase, variant, key, kind].join('|')).digest('hex');
}

async function decodeFeedback(messages: ConsumedMessage[]): Promise<(Feedback & { key: string | null })[]> {
  return Promise.all(messages.map(async (m) => ({ ...((await registry.decode(m.value!)) as Feedback), key: m.key })));
}

test.serial('data_quality: exact feedback for known records of two writer versions, progress offsets, SIGTERM stops cleanly', async (t) => {
  const topics = await createJobTopics(kafka, 'dq');
  // An older writer version (before currency and attributes existed), then the current contract.
  const current = readSchema('CustomerRecord');
  const older = { ...current, fields: current.fields.filter((f) => f.name !== 'currency' && f.name !== 'attributes') };
  const { id: olderId } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(older) }, { subject: topics.recordsSubject, compatibility: COMPATIBILITY.BACKWARD });
  const currentId = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  t.not(olderId, currentId);

  const oldRecord: Partial<CustomerRecord> = record('r-old', 'acme', { amount: null });
  delete oldRecord.currency;
  delete oldRecord.attributes;
  const records = [
    record('r-1', 'acme'),
    record('r-2', 'globex', { amount: -5, currency: 'USD' }),
    record('r-3', 'globex', { amount: 5_000_000, currency: 'USD' }),
    record('r-4', 'initech', { type: 'refund', amount: 3, currency: null }),
    record('r-5', 'initech', { type: 'login', amount: null, currency: null, event_time: Date.UTC(2099, 0, 1) }),
  ];
  await produce(topics.input, [
    { key: 'acme', value: await registry.encode(olderId, oldRecord) },
    ...(await Promise.all(records.map(async (r) => ({ key: r.customer_id, value: await registry.encode(currentId, r) })))),
    { key: 'acme', value: Buffer.from('this is not Avro') },
  ]);

  const folder = join(config.projectRoot, 'usecases', 'data_quality');
  const job = startUsecaseJob(folder, 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });

  const expected = [
    ['acme', 'r-old', 'missing_amount'], ['globex', 'r-2', 'negative_amount'], ['globex', 'r-3', 'amount_out_of_range'],
    ['initech', 'r-4', 'missing_currency'], ['initech', 'r-5', 'future_timestamp'],
  ].sort();
  const feedback = await decodeFeedback(await consumeAll(kafka, topics.output, expected.length, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${job.log().slice(-3000)}`);
  }));
  t.deepEqual(feedback.map((f) => [f.customer_id, f.record_ids.join(','), f.kind]).sort(), expected);
  for (const f of feedback) {
    t.is(f.key, f.customer_id, 'keyed by customer_id');
    t.is(f.feedback_id, expectedFeedbackId('data_quality', 'A', f.record_ids.join(','), f.kind));
    t.is(f.usecase, 'data_quality');
    t.is(f.variant, 'A');
    t.regex(f.version, /^[0-9a-f]{12}$/);
  }

  const [rejected] = await consumeAll(kafka, topics.rejected, 1, 60_000);
  t.regex(rejected!.value!.toString(), /undecodable record/);

  const ends = await endOffsets(topics.input);
  const reports = progress(await consumeUntil(kafka, topics.progress, (messages) => {
    const last = progress(messages).filter((m) => m.event === 'progress').at(-1);
    return last !== undefined && JSON.stringify(last.end_offsets) === JSON.stringify(ends);
  }, 60_000));
  const batches = reports.filter((m) => m.event === 'progress');
  t.is(batches.reduce((sum, m) => sum + (m.rows_in ?? 0), 0), 7, 'every input message counted once');
  t.is(batches.reduce((sum, m) => sum + (m.rows_out ?? 0), 0), expected.length);
  t.true(batches.every((m) => m.job === 'uc.data_quality.A'));

  process.kill(await job.driverPid(), 'SIGTERM');
  t.is(await job.exited, 0, job.log().slice(-3000));
  const after = progress(await consumeUntil(kafka, topics.progress, (messages) => progress(messages).some((m) => m.event === 'stopped'), 30_000));
  t.truthy(after.find((m) => m.event === 'stopped'));
});

test.serial('spending_spike (stateful): windows emitted once the watermark passes, with deterministic ids', async (t) => {
  const topics = await createJobTopics(kafka, 'spike');
  const id = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const input = [
    record('s-1', 'acme', { amount: 1500, event_time: Date.UTC(2026, 10, 1, 10, 10) }),
    record('s-2', 'globex', { amount: 20, event_time: Date.UTC(2026, 10, 1, 10, 12) }),
    // Later event time: moves the watermark past the windows above so they are emitted.
    record('s-3', 'initech', { amount: 1, event_time: Date.UTC(2026, 10, 1, 13, 0) }),
  ];
  await produce(topics.input, await Promise.all(input.map(async (r) => ({ key: r.customer_id, value: await registry.encode(id, r) }))));

  const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'spending_spike'), 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  const feedback = await decodeFeedback(await consumeAll(kafka, topics.output, 2, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${job.log().slice(-3000)}`);
  }));
  const keys = feedback.map((f) => `acme|${f.details['window_start']!.slice(0, 16)}`).sort();
  t.deepEqual(keys, ['acme|2026-11-01T09:30', 'acme|2026-11-01T10:00']);
  for (const f of feedback) {
    t.deepEqual(f.record_ids, ['s-1']);
    t.is(f.severity, 'warning');
    t.is(f.feedback_id, expectedFeedbackId('spending_spike', 'A', `acme|${f.details['window_start']!.slice(0, 16)}`, 'spending_spike'));
  }
  process.kill(await job.driverPid(), 'SIGTERM');
  t.is(await job.exited, 0, job.log().slice(-3000));
});

test.serial("a use case whose code raises is reported with the user's file and line", async (t) => {
  const topics = await createJobTopics(kafka, 'crash');
  const id = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  await produce(topics.input, [{ key: 'acme', value: await registry.encode(id, record('c-1', 'acme')) }]);
  const folder = join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases', 'crashing');
  const job = startUsecaseJob(folder, 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  t.is(await job.exited, 2, job.log().slice(-3000));
  const failure = job.log().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['error'] === 'user_code');
  t.truthy(failure, job.log().slice(-3000));
  t.regex(String(failure?.['file']), /fixtures\/usecases\/crashing\/job\.py$/);
  t.is(failure?.['line'], 3);
  t.regex(String(failure?.['message']), /ZeroDivisionError/);
  const reports = progress(await consumeUntil(kafka, topics.progress, (messages) => progress(messages).some((m) => m.event === 'failed'), 30_000));
  const failed = reports.find((m) => m.event === 'failed');
  t.is(failed?.line, 3);
});
