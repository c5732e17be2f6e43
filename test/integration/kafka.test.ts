/**
 * kafkajs against the pinned broker: the smoke tests that decided the Kafka version
 * (produce, consumer group, admin create/delete topics, fetch/set offsets).
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureTopics } from '../../shared/kafka.ts';
import { consumeAll, testKafka, uniqueName } from '../support/env.ts';

test('a produced batch is consumed in order through a consumer group, which commits its offsets', async (t) => {
  const kafka = testKafka();
  const topic = uniqueName('smoke-produce');
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await ensureTopics(admin, [{ topic, partitions: 3 }]);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sent = Array.from({ length: 30 }, (_, i) => ({ key: `customer-${i % 5}`, value: `record-${i}` }));
  await producer.send({ topic, acks: -1, messages: sent });
  await producer.disconnect();

  const groupId = uniqueName('smoke-group');
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received: { key: string; value: string }[] = [];
  await new Promise<void>((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        received.push({ key: message.key!.toString(), value: message.value!.toString() });
        if (received.length === sent.length) resolve();
      },
    }).catch(reject);
  });
  await consumer.disconnect(); // commits the consumed offsets

  t.deepEqual(received.map((m) => m.value).sort(), sent.map((m) => m.value).sort());
  // Per key, order is kept (same key → same partition).
  for (const key of new Set(sent.map((m) => m.key))) {
    t.deepEqual(received.filter((m) => m.key === key).map((m) => m.value), sent.filter((m) => m.key === key).map((m) => m.value));
  }
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const total = committed!.partitions.reduce((sum, p) => sum + Number(p.offset), 0);
  t.is(total, sent.length);
});

test('admin creates and deletes topics', async (t) => {
  const admin = testKafka().admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const topic = uniqueName('smoke-admin');
  t.deepEqual(await ensureTopics(admin, [{ topic, partitions: 2 }]), [topic]);
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  t.is(metadata.topics[0]?.partitions.length, 2);
  await admin.deleteTopics({ topics: [topic], timeout: 10_000 });
  for (let i = 0; i < 50 && (await admin.listTopics()).includes(topic); i++) await sleep(100);
  t.false((await admin.listTopics()).includes(topic));
});

test('group offsets can be set, fetched, and resolved by timestamp', async (t) => {
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const topic = uniqueName('smoke-offsets');
  await ensureTopics(admin, [{ topic, partitions: 1 }]);
  const producer = kafka.producer();
  await producer.connect();
  const base = Date.now() - 60_000;
  await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `m${i}`, timestamp: String(base + i * 1000) })) });
  await producer.disconnect();

  const groupId = uniqueName('smoke-offsets-group');
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '7' }] });
  const [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] });
  t.is(fetched?.partitions[0]?.offset, '7');

  const atTime = await admin.fetchTopicOffsetsByTimestamp(topic, base + 4500);
  t.is(atTime[0]?.offset, '5');
  const ends = await admin.fetchTopicOffsets(topic);
  t.is(ends[0]?.high, '10');

  // A consumer of that group starts exactly where the offsets were set.
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topic });
  const first = await new Promise<string>((resolve, reject) => {
    consumer.run({ eachMessage: async ({ message }) => resolve(message.value!.toString()) }).catch(reject);
  });
  await consumer.disconnect();
  t.is(first, 'm7');
});

test('consumeAll helper reads what was produced', async (t) => {
  const kafka = testKafka();
  const topic = uniqueName('smoke-helper');
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  await producer.send({ topic, messages: [{ key: 'k', value: 'v' }] });
  await producer.disconnect();
  const [message] = await consumeAll(kafka, topic, 1);
  t.is(message?.value?.toString(), 'v');
});
