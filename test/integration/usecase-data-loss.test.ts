/**
 * Input that Kafka no longer has is a loud failure, never a silent skip ([3/9]): a job
 * started at committed offsets below the partition's log start (the records aged out while
 * it was stopped; here deleted with DeleteRecords) fails and says data was lost, instead of
 * jumping ahead. The same job started from the log start reads every record still there.
 * Real Kafka, registry and Spark (spark-submit of the runner); serial, under the Spark suite.
 */
import test from 'ava';
import { join } from 'node:path';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { CustomerRecord } from '../../shared/schemas.ts';
import { config, consumeAll, testKafka } from '../support/env.ts';
import { createJobTopics, startUsecaseJob } from '../support/usecase-job.ts';

const registry = createRegistry(config);
const kafka = testKafka();

function record(record_id: string): CustomerRecord {
  const at = Date.UTC(2026, 10, 1, 10, 10);
  // A negative amount: data_quality gives one feedback per record, so rows count records read.
  return { record_id, customer_id: 'acme', source: 'test', event_time: at, type: 'purchase', amount: -1, currency: 'EUR', attributes: {}, ingested_at: at };
}

test.serial('a job whose committed offsets aged out of Kafka fails saying data was lost; it never skips silently', async (t) => {
  const topics = await createJobTopics(kafka, 'loss');
  const id = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  // All on partition 0 (explicit), so offsets 0..5 are these six records.
  await producer.send({ topic: topics.input, acks: -1, messages: await Promise.all([1, 2, 3, 4, 5, 6].map(async (n) => ({ partition: 0, key: 'acme', value: await registry.encode(id, record(`r-${n}`)) }))) });
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  // Records 0..3 "aged out": the log now starts at offset 4 (kafkajs needs the topic's metadata first).
  await admin.fetchTopicMetadata({ topics: [topics.input] });
  await admin.deleteTopicRecords({ topic: topics.input, partitions: [{ partition: 0, offset: '4' }] });
  const [low] = (await admin.fetchTopicOffsets(topics.input)).filter((p) => p.partition === 0);
  t.is(Number(low?.low), 4, 'the deletion took effect: the partition starts at 4');

  const folder = join(config.projectRoot, 'usecases', 'data_quality');
  // The committed position the orchestrator would hand over: 1, below the log start.
  const stale = startUsecaseJob(folder, 'A', topics, ['--starting-offsets', JSON.stringify({ [topics.input]: { 0: 1, 1: 0 } })]);
  t.teardown(() => { stale.child.kill('SIGKILL'); });
  let bound: NodeJS.Timeout | undefined;
  const code = await Promise.race([stale.exited, new Promise<'running'>((resolve) => (bound = setTimeout(() => resolve('running'), 240_000)))]);
  clearTimeout(bound);
  t.not(code, 'running', `the job kept running over lost data:\n${stale.log().slice(-2000)}`);
  t.not(code, 0);
  t.regex(stale.log(), /data may have been lost|OFFSET_OUT_OF_RANGE|out of range/i, 'its log says data was lost');
  const written = (await admin.fetchTopicOffsets(topics.output)).reduce((sum, p) => sum + Number(p.high), 0);
  t.is(written, 0, 'it wrote nothing: it did not jump ahead to the records still there');

  // From what Kafka still has (what `diamond replay` chooses), the two remaining records are read.
  const fresh = startUsecaseJob(folder, 'A', topics, ['--starting-offsets', 'earliest']);
  t.teardown(() => { fresh.child.kill('SIGKILL'); });
  const rows = await consumeAll(kafka, topics.output, 2, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${fresh.log().slice(-3000)}`);
  });
  t.is(rows.length, 2);
});
