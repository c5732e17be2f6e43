/**
 * Job lag shows in Kafka's own consumer-group tool: offsets the orchestrator commits to a
 * job's group are what `diamond kafka consumer-groups --describe` reports.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureTopics } from '../../shared/kafka.ts';
import { commitJobOffsets } from '../../infra/orchestrator/offsets.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { config, testKafka, uniqueName } from '../support/env.ts';

const run = promisify(execFile);

test('committed job offsets and their lag appear in kafka-consumer-groups', async (t) => {
  const kafka = testKafka();
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  t.teardown(async () => { await admin.disconnect(); await producer.disconnect(); });
  const topic = uniqueName('tool-records');
  const group = `${uniqueName('tool')}.uc.data_quality.A`;
  await ensureTopics(admin, [{ topic, partitions: 1 }]);
  await producer.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ value: `r${i}` })) });
  await commitJobOffsets(kafka, admin, group, topic, { '0': 3 });

  const { stdout } = await run(process.execPath, ['infra/cli/bin.js', 'kafka', 'consumer-groups', '--describe', '--group', group], { timeout: 300_000 });
  const row = stdout.split('\n').find((line) => line.startsWith(group));
  t.truthy(row, stdout);
  t.deepEqual(row!.trim().split(/\s+/).slice(1, 6), [topic, '0', '3', '5', '2'], 'topic, partition, committed, end, lag');
});

test('topic tail prints the last messages decoded: Avro through the registry, JSON as JSON, text as text', async (t) => {
  const kafka = testKafka();
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  t.teardown(async () => { await admin.disconnect(); await producer.disconnect(); });
  const topic = uniqueName('tool-tail');
  await ensureTopics(admin, [{ topic, partitions: 1 }]);
  t.teardown(() => admin.deleteTopics({ topics: [topic] }).catch(() => undefined));
  const registry = createRegistry(config);
  const id = await registerContract(registry, 'CustomerRecord', uniqueName('tool-tail-value'));
  const record = { record_id: 'r-1', customer_id: 'acme', source: 'shop', event_time: 1_764_662_400_000, type: 'purchase', amount: 12.5, currency: 'EUR', attributes: {}, ingested_at: 1_764_662_400_000 };
  await producer.send({ topic, messages: [
    { key: 'old', value: 'not shown: more than -n from the end' },
    { key: 'acme', value: await registry.encode(id, record) },
    { key: 'j', value: JSON.stringify({ reason: 'bad' }) },
    { key: 't', value: 'plain text' },
  ] });
  const { stdout } = await run(process.execPath, ['infra/cli/bin.js', 'topic', 'tail', topic, '-n', '3', '--json'], { timeout: 120_000 });
  const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { offset: number; key: string; encoding: string; schemaId: number | null; value: unknown });
  t.deepEqual(lines.map((l) => [l.offset, l.key, l.encoding]), [[1, 'acme', 'avro'], [2, 'j', 'json'], [3, 't', 'text']]);
  t.is(lines[0]!.schemaId, id);
  t.like(lines[0]!.value, { record_id: 'r-1', customer_id: 'acme', amount: 12.5 });
  t.deepEqual(lines[1]!.value, { reason: 'bad' });
  t.is(lines[2]!.value, 'plain text');
});
