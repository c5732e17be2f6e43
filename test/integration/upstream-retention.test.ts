/**
 * DIAMOND_RECORDS_RETENTION on the real Kafka: records.normalized is created with it, and an
 * existing topic whose retention differs is changed (logged), its other overrides kept.
 */
import test from 'ava';
import kafkajs from 'kafkajs';
import { loadConfig } from '../../shared/config.ts';
import { ensureUpstreamTopics, upstreamTopicSpecs } from '../../upstream/service.ts';
import { testKafka, uniqueName } from '../support/env.ts';

const DAY = 86_400_000;
const { ConfigResourceTypes } = kafkajs; // CommonJS: not a named ESM export

test('records.normalized gets DIAMOND_RECORDS_RETENTION at creation and when it changes; other settings stay', async (t) => {
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const topics = { normalized: uniqueName('test-retention-normalized'), rejected: uniqueName('test-retention-rejected') };
  t.teardown(async () => {
    await admin.deleteTopics({ topics: [topics.normalized, topics.rejected] }).catch(() => undefined);
    await admin.disconnect();
  });
  const settings = async (topic: string): Promise<Record<string, string>> => {
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
    return Object.fromEntries((resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
  };
  const changes: unknown[] = [];
  const logger = { info: (fields: unknown) => void changes.push(fields) };

  const short = loadConfig({ ...process.env, DIAMOND_RECORDS_RETENTION: '3d' });
  await ensureUpstreamTopics(kafka, upstreamTopicSpecs(short, topics), logger);
  const created = await settings(topics.normalized);
  t.is(created['retention.ms'], String(3 * DAY));
  const maxMessageBytes = created['max.message.bytes'];
  t.truthy(maxMessageBytes);
  t.deepEqual(changes, [], 'nothing to change on a topic just created with it');
  t.not((await settings(topics.rejected))['retention.ms'], String(3 * DAY), 'records.rejected keeps the broker default (7 days)');

  const longer = loadConfig({ ...process.env, DIAMOND_RECORDS_RETENTION: '60d' });
  await ensureUpstreamTopics(kafka, upstreamTopicSpecs(longer, topics), logger);
  const changed = await settings(topics.normalized);
  t.is(changed['retention.ms'], String(60 * DAY));
  t.is(changed['max.message.bytes'], maxMessageBytes, 'the other override is kept');
  t.deepEqual(changes, [{ topic: topics.normalized, name: 'retention.ms', from: String(3 * DAY), to: String(60 * DAY) }]);

  await ensureUpstreamTopics(kafka, upstreamTopicSpecs(longer, topics), logger);
  t.is(changes.length, 1, 'the same value again changes nothing');
});
