/**
 * The feedback writer against the real Kafka, registry, Cassandra and Redis: idempotent
 * upserts, offsets committed after the writes, rejected messages, every writer version,
 * and the A/B post-filter with weights changed at runtime.
 */
import test from 'ava';
import { SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { compareVariants, readVariantRows } from '../../downstream/ab-report.ts';
import { bucketOf } from '../../downstream/assign-variant.ts';
import { migrateKeyspace } from '../../downstream/migrations.ts';
import { FeedbackWriter } from '../../downstream/feedback-writer.ts';
import type { RejectionEnvelope } from '../../downstream/rejections.ts';
import { metricValue } from '../../shared/metrics/registry.ts';
import { readSchema } from '../../shared/schemas.ts';
import { downstreamFixture, feedback, type DownstreamFixture } from '../support/downstream.ts';
import { consumeAll } from '../support/env.ts';

async function startWriter(t: { teardown(fn: () => Promise<void>): void }, f: DownstreamFixture): Promise<FeedbackWriter> {
  const writer = new FeedbackWriter({
    kafka: f.kafka, registry: f.registry, cassandra: f.cassandra, rollouts: f.rollouts, logger: f.logger,
    keyspace: f.keyspace, topic: f.topic, rejectedTopic: f.rejectedTopic, groupId: f.groupId,
  });
  t.teardown(() => writer.stop());
  await writer.start();
  return writer;
}

test('the same feedback delivered three times ends as one row, and offsets are committed', async (t) => {
  const f = await downstreamFixture(t, 'writer-idem');
  const rows = Array.from({ length: 10 }, (_, i) => feedback({ customer_id: `c${i}` }));
  await f.produce(rows);
  await f.produce(rows);
  await f.produce([...rows].reverse());
  await startWriter(t, f);
  await f.waitForCommitted();
  t.is(await f.count('feedback_by_variant'), 10);
  t.is(await f.count('feedback_by_customer'), 10);
  const stored = await f.cassandra.execute(`SELECT feedback_id, details, record_ids, score FROM ${f.keyspace}.feedback_by_customer WHERE customer_id = ? AND day = ?`, ['c3', '2026-11-20'], { prepare: true });
  t.is(stored.rowLength, 1);
  t.is(stored.first().get('feedback_id') as string, rows[3]!.feedback_id);
  t.deepEqual(stored.first().get('details'), rows[3]!.details);
  t.deepEqual(stored.first().get('record_ids'), rows[3]!.record_ids);
});

test('undecodable messages go to the rejected topic with the raw bytes, and the writer keeps going', async (t) => {
  const f = await downstreamFixture(t, 'writer-reject');
  await startWriter(t, f);
  const good = await f.registry.encode(f.schemaId, feedback({ customer_id: 'ok-1' }));
  const unknownId = Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), good.subarray(5)]);
  const truncated = good.subarray(0, 12);
  const noCustomer = await f.registry.encode(f.schemaId, feedback({ customer_id: '' }));
  const bad = [Buffer.from('{"not":"avro"}'), Buffer.from([0, 1]), unknownId, truncated, noCustomer];
  await f.producer.send({ topic: f.topic, messages: [...bad.map((value) => ({ key: 'x', value })), { key: 'ok-2', value: await f.registry.encode(f.schemaId, feedback({ customer_id: 'ok-2' })) }] });
  await f.produce([feedback({ customer_id: 'ok-1' })]);

  const rejected = await consumeAll(f.kafka, f.rejectedTopic, bad.length);
  const envelopes = rejected.map((m) => JSON.parse(m.value!.toString()) as RejectionEnvelope);
  t.deepEqual(envelopes.map((e) => Buffer.from(e.raw_base64, 'base64')).sort((a, b) => Buffer.compare(a, b)), [...bad].sort((a, b) => Buffer.compare(a, b)));
  for (const envelope of envelopes) {
    t.is(envelope.topic, f.topic);
    t.regex(envelope.offset, /^\d+$/);
    t.true(envelope.reason.length > 0);
  }
  t.true(envelopes.some((e) => /not registered/.test(e.reason)));
  await f.waitForCommitted();
  t.is(await f.count('feedback_by_customer'), 2);
});

test('every registered writer version decodes (a newer schema with an added field)', async (t) => {
  const f = await downstreamFixture(t, 'writer-versions');
  const v1 = readSchema('Feedback');
  const v2 = { ...v1, fields: [...v1.fields, { name: 'labels', type: { type: 'array', items: 'string' }, default: [] }] };
  const { id: v2Id } = await f.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject: `${f.topic}-value`, compatibility: COMPATIBILITY.BACKWARD });
  t.not(v2Id, f.schemaId);
  await f.producer.send({ topic: f.topic, messages: [
    { key: 'v1', value: await f.registry.encode(f.schemaId, feedback({ customer_id: 'v1' })) },
    { key: 'v2', value: await f.registry.encode(v2Id, { ...feedback({ customer_id: 'v2' }), labels: ['new'] }) },
  ] });
  await startWriter(t, f);
  await f.waitForCommitted();
  t.is(await f.count('feedback_by_customer'), 2);
});

test('A/B: only the assigned variant reaches customers; raising B at runtime moves exactly the expected buckets', async (t) => {
  const f = await downstreamFixture(t, 'writer-ab');
  const customers = Array.from({ length: 40 }, (_, i) => `cust-${i}`);
  const both = (day: string): ReturnType<typeof feedback>[] => customers.flatMap((customer_id) => ['A', 'B'].map((variant) =>
    feedback({ customer_id, variant, event_time: Date.parse(`${day}T10:00:00Z`), feedback_id: `${day}:${variant}:${customer_id}`, record_ids: [`${day}:${customer_id}`] })));
  // A one-variant use case without weights passes straight through.
  const solo = feedback({ customer_id: 'cust-0', usecase: 'solo', variant: 'A', feedback_id: 'solo-1' });

  await f.rollouts.set('spending', { A: 100, B: 0 });
  await startWriter(t, f);
  await f.produce([...both('2026-11-01'), solo]);
  await f.waitForCommitted();
  await f.rollouts.set('spending', { A: 50, B: 50 });
  await f.produce(both('2026-11-02'));
  await f.waitForCommitted();

  t.is(await f.count('feedback_by_variant'), customers.length * 4 + 1);
  const delivered = await f.cassandra.execute(`SELECT customer_id, day, variant, usecase FROM ${f.keyspace}.feedback_by_customer`);
  const variantOf = new Map(delivered.rows.filter((r) => r.get('usecase') === 'spending').map((r) => [`${String(r.get('day'))}/${r.get('customer_id') as string}`, r.get('variant') as string]));
  t.is(variantOf.size, customers.length * 2, 'one delivered row per customer and day');
  t.true(delivered.rows.some((r) => r.get('usecase') === 'solo'));
  let moved = 0;
  for (const customer of customers) {
    t.is(variantOf.get(`2026-11-01/${customer}`), 'A', customer);
    const expected = bucketOf(customer, 'spending') >= 5000 ? 'B' : 'A';
    t.is(variantOf.get(`2026-11-02/${customer}`), expected, customer);
    if (expected === 'B') moved++;
  }
  t.true(moved > 0 && moved < customers.length, `moved ${moved}`);

  // `diamond ab` reads the same table: both variants saw every customer and said the same about the same records.
  const report = compareVariants('spending', 1, await readVariantRows(f.cassandra, f.keyspace, 'spending', ['A', 'B'], 1, Date.parse('2026-11-02T12:00:00Z')));
  t.deepEqual(report.variants.map((v) => [v.variant, v.rows, v.customers]), [['A', customers.length * 2, customers.length], ['B', customers.length * 2, customers.length]]);
  t.deepEqual(report.agreement, [{ variants: ['A', 'B'], ratio: 1, both: customers.length * 2, either: customers.length * 2 }]);
});

test('Cassandra failing a batch: partition paused, retried with backoff, resumed without loss', async (t) => {
  const f = await downstreamFixture(t, 'writer-retry');
  const writer = await startWriter(t, f);
  await f.produce(Array.from({ length: 10 }, (_, i) => feedback({ customer_id: `before-${i}` })));
  await f.waitForCommitted();

  // A real write failure: the table disappears (as when a node is unreachable, every insert fails).
  await f.cassandra.execute(`DROP TABLE ${f.keyspace}.feedback_by_customer`);
  const retries = (): Promise<number> => metricValue(writer.metrics.registry, 'diamond_feedback_batch_retries_total');
  const retriesBefore = await retries();
  await f.produce(Array.from({ length: 10 }, (_, i) => feedback({ customer_id: `during-${i}` })));
  const deadline = Date.now() + 30_000;
  while ((await retries()) < retriesBefore + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  t.true((await retries()) >= retriesBefore + 2, 'the failing batch is retried');
  await t.throwsAsync(f.waitForCommitted(1000), undefined, 'offsets do not move while Cassandra fails');

  // Cassandra is back: the same migration recreates the table, the writer resumes on its own.
  await f.cassandra.execute(`DELETE FROM ${f.keyspace}.schema_migrations WHERE version = 1`);
  await migrateKeyspace(f.cassandra, f.keyspace);
  await f.waitForCommitted();
  const during = await f.cassandra.execute(`SELECT customer_id FROM ${f.keyspace}.feedback_by_customer`);
  t.deepEqual(during.rows.map((r) => r.get('customer_id') as string).sort(), Array.from({ length: 10 }, (_, i) => `during-${i}`).sort());
  t.is(await f.count('feedback_by_variant'), 20);
});
