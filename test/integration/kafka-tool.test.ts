/**
 * Job lag shows in Kafka's own consumer-group tool: offsets the orchestrator commits to a
 * job's group are what `diamond kafka consumer-groups --describe` reports.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureTopics } from '../../shared/kafka.ts';
import { commitJobOffsets } from '../../infra/orchestrator/offsets.ts';
import { testKafka, uniqueName } from '../support/env.ts';

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
  await commitJobOffsets(admin, group, topic, { '0': 3 });

  const { stdout } = await run(process.execPath, ['infra/cli/bin.js', 'kafka', 'consumer-groups', '--describe', '--group', group], { timeout: 300_000 });
  const row = stdout.split('\n').find((line) => line.startsWith(group));
  t.truthy(row, stdout);
  t.deepEqual(row!.trim().split(/\s+/).slice(1, 6), [topic, '0', '3', '5', '2'], 'topic, partition, committed, end, lag');
});
