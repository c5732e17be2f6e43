/**
 * No message can wedge a partition: a feedback row Cassandra refuses on every attempt (a
 * partition key over 64 KiB, which the driver cannot even encode) goes to the rejected
 * topic with its reason, the rows before and after it on the same partition are written,
 * and the group's offset moves past it.
 */
import test from 'ava';
import type { RejectionEnvelope } from '../../downstream/rejections.ts';
import { FeedbackWriter } from '../../downstream/feedback-writer.ts';
import { metricValue } from '../../shared/metrics/registry.ts';
import { downstreamFixture, feedback } from '../support/downstream.ts';
import { consumeAll } from '../support/env.ts';

test('a row Cassandra refuses for good is rejected with its reason and the partition moves on', async (t) => {
  const f = await downstreamFixture(t, 'writer-poison');
  const writer = new FeedbackWriter({
    kafka: f.kafka, registry: f.registry, cassandra: f.cassandra, rollouts: f.rollouts, logger: f.logger,
    keyspace: f.keyspace, topic: f.topic, rejectedTopic: f.rejectedTopic, groupId: f.groupId,
  });
  t.teardown(() => writer.stop());
  const before = Array.from({ length: 20 }, (_, i) => feedback({ customer_id: `before-${i}` }));
  const poison = feedback({ customer_id: 'p'.repeat(70_000) }); // Cassandra keys are at most 65,535 bytes
  const after = Array.from({ length: 20 }, (_, i) => feedback({ customer_id: `after-${i}` }));
  // One message, one partition: the poison sits between good rows of the same partition.
  const encode = async (row: typeof poison): Promise<{ key: string; value: Buffer; partition: number }> => ({ key: 'same', value: await f.registry.encode(f.schemaId, row), partition: 0 });
  await f.producer.send({ topic: f.topic, acks: -1, messages: await Promise.all([...before, poison, ...after].map(encode)) });
  await writer.start();

  const [rejected] = await consumeAll(f.kafka, f.rejectedTopic, 1, 120_000);
  const envelope = JSON.parse(rejected!.value!.toString()) as RejectionEnvelope;
  t.regex(envelope.reason, /not written after 3 attempts: .*out of range.*Received 70000/i);
  t.is(envelope.partition, 0);
  t.is(envelope.offset, String(before.length), 'the rejected message is the poison one');
  t.is(Buffer.from(envelope.raw_base64, 'base64').length > 70_000, true, 'the raw bytes are kept');

  await f.waitForCommitted(60_000);
  t.is(await f.count('feedback_by_variant'), before.length + after.length, 'every other row written');
  t.is(await f.count('feedback_by_customer'), before.length + after.length);
  t.is(await metricValue(writer.metrics.registry, 'diamond_feedback_rejected_total'), 1, 'the one poison message is counted');
});
