/** The history writer: records.normalized → records_by_customer, idempotent, rejects what does not decode. */
import test from 'ava';
import { HistoryWriter } from '../../downstream/history-writer.ts';
import { registerContract } from '../../shared/registry.ts';
import type { CustomerRecord } from '../../shared/schemas.ts';
import { downstreamFixture } from '../support/downstream.ts';
import { consumeAll } from '../support/env.ts';

test('records replayed three times end as one row each; undecodable ones are rejected and the writer goes on', async (t) => {
  // The fixture's topic carries CustomerRecord here (its own subject, own schema id).
  const f = await downstreamFixture(t, 'history');
  const schemaId = await registerContract(f.registry, 'CustomerRecord', `${f.topic}-records-value`);
  const records: CustomerRecord[] = Array.from({ length: 12 }, (_, i) => ({
    record_id: `r-${i}`, customer_id: i % 2 === 0 ? 'acme' : 'globex', source: 'http', type: 'purchase',
    event_time: Date.parse('2026-11-21T08:00:00Z') + i, amount: i % 3 === 0 ? null : i * 1.5, currency: i % 3 === 0 ? null : 'EUR',
    attributes: { shop: `s${i}` }, ingested_at: Date.now(),
  }));
  const encoded = await Promise.all(records.map(async (r) => ({ key: r.customer_id, value: await f.registry.encode(schemaId, r) })));
  await f.producer.send({ topic: f.topic, messages: [...encoded, { key: 'x', value: Buffer.from('not avro') }, ...encoded, ...encoded] });

  const writer = new HistoryWriter({ kafka: f.kafka, registry: f.registry, cassandra: f.cassandra, logger: f.logger, keyspace: f.keyspace, topic: f.topic, rejectedTopic: f.rejectedTopic, groupId: f.groupId });
  t.teardown(() => writer.stop());
  await writer.start();
  await f.waitForCommitted();

  t.is(await f.count('records_by_customer'), 12);
  const acme = await f.cassandra.execute(`SELECT record_id, amount, currency, attributes FROM ${f.keyspace}.records_by_customer WHERE customer_id = ? AND day = ?`, ['acme', '2026-11-21'], { prepare: true });
  t.deepEqual(acme.rows.map((r) => r.get('record_id') as string), ['r-0', 'r-2', 'r-4', 'r-6', 'r-8', 'r-10']);
  t.is(acme.rows[0]!.get('amount'), null);
  t.is(acme.rows[1]!.get('currency'), 'EUR');
  t.deepEqual(acme.rows[1]!.get('attributes'), { shop: 's2' });
  const [rejected] = await consumeAll(f.kafka, f.rejectedTopic, 1);
  t.is(Buffer.from((JSON.parse(rejected!.value!.toString()) as { raw_base64: string }).raw_base64, 'base64').toString(), 'not avro');
});
