/**
 * What integration tests share: the config (loaded once), unique names so tests can run
 * side by side on one set of services, and small helpers over the real clients.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { createKafka } from '../../shared/kafka.ts';

/**
 * Use case roots of the tests: the examples, the deliberately broken fixtures, and the temp
 * folder tests copy use cases into (upgrades, bystanders). Production's default is usecases/ only.
 */
const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const TEST_USECASE_ROOTS = [join(projectRoot, 'usecases'), join(projectRoot, 'test', 'integration', 'fixtures', 'usecases'), tmpdir()].join(',');

export const config: DiamondConfig = loadConfig({ DIAMOND_USECASE_ROOTS: TEST_USECASE_ROOTS, ...process.env });

/** `prefix-<8 hex>`: a topic, group, keyspace-safe or key-prefix-safe unique name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Cassandra identifiers allow no dashes. */
export function uniqueKeyspace(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
}

export function testKafka(): Kafka {
  return createKafka(config, { clientId: uniqueName('test') });
}

export interface ConsumedMessage {
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly partition: number;
  readonly offset: string;
}

/** Reads exactly `count` messages of `topic` from the beginning (or fails after `timeoutMs`). */
export async function consumeAll(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<ConsumedMessage[]> {
  return consumeUntil(kafka, topic, (messages) => messages.length >= count, timeoutMs);
}

/** Reads `topic` from the beginning until `done(messages)` holds (or fails after `timeoutMs`). */
export async function consumeUntil(kafka: Kafka, topic: string, done: (messages: ConsumedMessage[]) => boolean, timeoutMs = 60_000): Promise<ConsumedMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('test-reader') });
  const messages: ConsumedMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`condition on ${topic} not met in ${timeoutMs} ms after ${messages.length} messages`)), timeoutMs);
      consumer.run({
        eachMessage: async ({ message, partition }) => {
          messages.push({ key: message.key?.toString() ?? null, value: message.value, partition, offset: message.offset });
          if (done(messages)) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}
