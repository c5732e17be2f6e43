/** The raw-topic normalizer against the real Kafka, registry and Redis. */
import test from 'ava';
import { createLogger } from '../../shared/logger.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createRegistry } from '../../shared/registry.ts';
import type { CustomerRecord } from '../../shared/schemas.ts';
import { Topics } from '../../shared/topics.ts';
import { RawTopicNormalizer } from '../../upstream/raw-topic-normalizer.ts';
import type { RejectedEnvelope } from '../../upstream/rejected.ts';
import { openUpstream } from '../../upstream/service.ts';
import { config, consumeAll, testKafka, uniqueName } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });
const registry = createRegistry(config);

test('raw JSON messages are normalized, bad ones rejected with topic/partition/offset, and offsets committed after both', async (t) => {
  const topics = { normalized: uniqueName('test-normalized'), rejected: uniqueName('test-rejected') };
  const core = await openUpstream(config, { logger, topics, subject: uniqueName('test-records-value'), redisKeyPrefix: `${uniqueName('test-upstream')}:` });
  t.teardown(() => core.close());
  const source = uniqueName('test-src');
  await core.sources.add(source, { defaults: { type: 'click' } });
  const rawTopic = Topics.rawRecords(source);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await ensureTopics(admin, [{ topic: rawTopic, partitions: 1 }]);
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: rawTopic,
    messages: [
      { value: JSON.stringify({ cust_id: 'A', ts: '2026-11-01T12:00:00Z' }) },
      { value: '{"cust_id": "B", "ts": ' },
      { value: JSON.stringify({ cust_id: 'C', ts: 1_761_998_400 }) },
    ],
  });
  await producer.disconnect();

  const groupId = uniqueName('test-raw-normalizer');
  const normalizer = new RawTopicNormalizer({ kafka: core.kafka, pipeline: core.pipeline, sources: core.sources, logger, groupId, topics: [rawTopic] });
  await normalizer.start();
  t.teardown(() => normalizer.stop());

  const records = await Promise.all((await consumeAll(testKafka(), topics.normalized, 2)).map(async (message) => (await registry.decode(message.value!)) as CustomerRecord));
  t.deepEqual(records.map((record) => record.customer_id).sort(), ['a', 'c']);
  t.true(records.every((record) => record.source === source && record.type === 'click'));
  const [envelope] = (await consumeAll(testKafka(), topics.rejected, 1)).map((message) => JSON.parse(message.value!.toString()) as RejectedEnvelope);
  t.like(envelope, { source, via: 'raw-topic', raw: '{"cust_id": "B", "ts": ', location: { topic: rawTopic, partition: 0, offset: '1' } });

  let committed = '';
  for (let tries = 0; tries < 50 && committed !== '3'; tries += 1) {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [rawTopic] });
    committed = offsets?.partitions[0]?.offset ?? '';
    if (committed !== '3') await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.is(committed, '3', 'the group committed past all three messages');
});
