/**
 * What integration tests share: the config (loaded once), unique names so tests can run
 * side by side on one set of services, and small helpers over the real clients.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
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

/** Sum of per-partition offsets, a partition without a committed offset (-1) counting 0. */
export function sumOffsets(offsets: Record<string, number>): number {
  return Object.values(offsets).reduce((sum, offset) => sum + Math.max(0, offset), 0);
}

/**
 * Every message of `topic` up to its end offsets as they are now (a known end, so a check
 * that something did NOT happen reads everything and never stops at the first message).
 */
export async function readToEnd(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<ConsumedMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
  const total = [...ends.values()].reduce((sum, high) => sum + high, 0n);
  if (total === 0n) return [];
  // Counted per partition against its own end, so a message produced meanwhile is not needed.
  const reached = (messages: ConsumedMessage[]): boolean =>
    [...ends].every(([partition, high]) => high === 0n || messages.some((m) => m.partition === partition && BigInt(m.offset) + 1n >= high));
  const messages = await consumeUntil(kafka, topic, reached, timeoutMs);
  return messages.filter((m) => BigInt(m.offset) < (ends.get(m.partition) ?? 0n));
}

/** A TCP port free on loopback right now (for a private server or API of one test). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls `probe` every 500 ms until it gives a value (not null); fails after `timeoutMs` naming `what`. */
export async function until<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
