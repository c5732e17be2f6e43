/**
 * Group commit (upstream/group-commit.ts) on the real Kafka: batches sent while a request is in
 * flight share the next request; every message arrives once, in order per key, and each caller
 * resolves only after its request was acknowledged; a failed request fails exactly its callers.
 */
import test from 'ava';
import { ensureTopics } from '../../shared/kafka.ts';
import { createUpstreamProducer } from '../../upstream/service.ts';
import { GroupCommitProducer } from '../../upstream/group-commit.ts';
import { readToEnd, testKafka, uniqueName } from '../support/env.ts';

const kafka = testKafka();

test('concurrent batches share requests; every message once, in order per key, each caller after its ack', async (t) => {
  const topic = uniqueName('test-group-commit');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic, partitions: 3 }]);
  const producer = createUpstreamProducer(kafka);
  await producer.connect();
  t.teardown(async () => {
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });
  const sender = new GroupCommitProducer(producer);
  const BATCHES = 40;
  const PER_BATCH = 50;
  const acked: number[] = [];
  await Promise.all(Array.from({ length: BATCHES }, async (_, b) => {
    await sender.send([{ topic, messages: Array.from({ length: PER_BATCH }, (_, i) => ({ key: `k${i % 7}`, value: `${b}:${i}` })) }]);
    acked.push(b);
  }));
  t.is(acked.length, BATCHES);
  t.is(sender.batches, BATCHES);
  t.true(sender.requests < BATCHES, `${BATCHES} batches went out in ${sender.requests} requests`);
  t.log(`${BATCHES} concurrent batches → ${sender.requests} Kafka requests`);

  const messages = await readToEnd(kafka, topic);
  const values = messages.map((m) => m.value!.toString());
  t.is(values.length, BATCHES * PER_BATCH, 'every message once');
  t.is(new Set(values).size, BATCHES * PER_BATCH);
  // Per key (one partition each), batch by batch in the order they were sent.
  const byKey = new Map<string, string[]>();
  for (const m of messages) byKey.set(m.key!, [...(byKey.get(m.key!) ?? []), m.value!.toString()]);
  for (const [key, list] of byKey) {
    const order = list.map((v) => v.split(':').map(Number) as [number, number]);
    const sorted = [...order].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    t.deepEqual(order, sorted, `${key}: in the order sent`);
  }

  // A request Kafka refuses fails its callers (the upstream producer would retry a missing topic
  // for ever; this one gives up at once, and creates no topic).
  const strict = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await strict.connect();
  t.teardown(() => strict.disconnect());
  const failing = new GroupCommitProducer(strict);
  const missing = uniqueName('test-group-commit-missing');
  const outcomes = await Promise.allSettled([1, 2, 3].map((i) => failing.send([{ topic: missing, messages: [{ value: `x${i}` }] }])));
  t.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected']);
  t.is((await sender.send([{ topic, messages: [{ key: 'k0', value: 'after' }] }]), undefined), undefined, 'the working sender goes on');
});
