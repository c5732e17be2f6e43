/**
 * Messages downstream cannot use go to a `*.rejected` topic as a JSON envelope (DESIGN §3),
 * with the original bytes, so nothing is dropped silently and an operator can replay them.
 */
import type { KafkaMessage, Producer } from 'kafkajs';
import { isPermanentWriteError, WRITE_ATTEMPTS_BEFORE_REJECT } from './cassandra-rows.ts';
import type { PoisonPolicy } from './durable-consumer.ts';

export interface Rejection {
  readonly reason: string;
  readonly topic: string;
  readonly partition: number;
  readonly message: KafkaMessage;
}

export interface RejectionEnvelope {
  readonly source: string;
  readonly received_at: string;
  /** Same shape as upstream's rejects in records.rejected. */
  readonly reasons: { readonly field: string; readonly problem: string }[];
  readonly reason: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key_base64: string | null;
  readonly raw_base64: string;
}

/** Produces the envelopes and resolves once Kafka acknowledged them (acks=all). */
export async function sendRejections(producer: Producer, rejectedTopic: string, source: string, rejections: readonly Rejection[]): Promise<void> {
  if (rejections.length === 0) return;
  const receivedAt = new Date().toISOString();
  await producer.send({
    topic: rejectedTopic,
    acks: -1,
    messages: rejections.map(({ reason, topic, partition, message }) => {
      const envelope: RejectionEnvelope = {
        source,
        received_at: receivedAt,
        reasons: [{ field: '(message)', problem: reason }],
        reason,
        topic,
        partition,
        offset: message.offset,
        key_base64: message.key ? message.key.toString('base64') : null,
        raw_base64: (message.value ?? Buffer.alloc(0)).toString('base64'),
      };
      return { key: message.key, value: JSON.stringify(envelope) };
    }),
  });
}

/** The writers' poison policy: a message Cassandra refuses for good goes to `rejectedTopic`. */
export function rejectPoisonTo(producer: Producer, rejectedTopic: string, source: string): PoisonPolicy {
  return {
    maxAttempts: WRITE_ATTEMPTS_BEFORE_REJECT,
    isPermanent: isPermanentWriteError,
    reject: (message, reason, { topic, partition }) => sendRejections(producer, rejectedTopic, source, [{ reason, topic, partition, message }]),
  };
}
