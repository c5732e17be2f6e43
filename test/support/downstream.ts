/**
 * An isolated downstream for one test: its own topics, consumer group, migrated keyspace,
 * Redis key prefix and registry subject, torn down afterwards.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { ExecutionContext } from 'ava';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import { createCassandra, type CassandraClient } from '../../shared/cassandra.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { keyspaceReplication, migrateKeyspace } from '../../downstream/migrations.ts';
import { RolloutStore } from '../../downstream/rollout-store.ts';
import { config, testKafka, uniqueKeyspace, uniqueName } from './env.ts';

export interface DownstreamFixture {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  readonly registry: SchemaRegistry;
  readonly cassandra: CassandraClient;
  readonly redis: Redis;
  readonly rollouts: RolloutStore;
  readonly logger: Logger;
  readonly keyspace: string;
  readonly keyPrefix: string;
  readonly topic: string;
  readonly rejectedTopic: string;
  readonly groupId: string;
  readonly schemaId: number;
  /** Produces Feedback in Confluent wire format, keyed by customer_id, and waits for the acks. */
  produce(rows: readonly Feedback[]): Promise<void>;
  /** Resolves once the group committed up to the end of the topic (the writer caught up). */
  waitForCommitted(timeoutMs?: number): Promise<void>;
  count(table: string): Promise<number>;
}

export async function downstreamFixture(t: ExecutionContext, name: string): Promise<DownstreamFixture> {
  const kafka = testKafka();
  const admin = kafka.admin();
  const producer = kafka.producer();
  const registry = createRegistry(config);
  const cassandra = createCassandra(config);
  const keyPrefix = `${uniqueName(`test-${name}`)}:`;
  const redis = createRedis(config, { keyPrefix });
  const keyspace = uniqueKeyspace(`test_${name.replaceAll('-', '_')}`);
  const topic = uniqueName(`test-${name}-feedback`);
  const rejectedTopic = `${topic}.rejected`;
  const groupId = uniqueName(`test-${name}-group`);
  const logger = createLogger({ logLevel: 'error' }, { fd: 2, bindings: { test: name } });

  await Promise.all([admin.connect(), producer.connect(), cassandra.connect()]);
  t.teardown(async () => {
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic, rejectedTopic] }).catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
    await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    await cassandra.shutdown();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(keyPrefix.length)));
    redis.disconnect();
  });
  // kafkajs' createTopics(waitForLeaders) sometimes sees UNKNOWN_TOPIC_OR_PARTITION while the
  // new topic's metadata propagates; creating is idempotent, so try again after a pause.
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureTopics(admin, [{ topic }, { topic: rejectedTopic, partitions: 1 }]);
      await admin.fetchTopicMetadata({ topics: [topic, rejectedTopic] });
      break;
    } catch (error) {
      if (attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
  await migrateKeyspace(cassandra, keyspace, { replication: keyspaceReplication(config.cassandra) });
  const schemaId = await registerContract(registry, 'Feedback', `${topic}-value`);

  return {
    kafka, admin, producer, registry, cassandra, redis, rollouts: new RolloutStore(redis), logger,
    keyspace, keyPrefix, topic, rejectedTopic, groupId, schemaId,
    async produce(rows) {
      const messages = await Promise.all(rows.map(async (row) => ({ key: row.customer_id, value: await registry.encode(schemaId, row) })));
      await producer.send({ topic, acks: -1, messages });
    },
    async waitForCommitted(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const ends = await admin.fetchTopicOffsets(topic);
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        const byPartition = new Map((committed?.partitions ?? []).map((p) => [p.partition, p.offset]));
        const behind = ends.filter((end) => end.high !== '0' && byPartition.get(end.partition) !== end.high);
        if (behind.length === 0) return;
        if (Date.now() > deadline) throw new Error(`group ${groupId} did not catch up: ${JSON.stringify(behind)}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
    async count(table) {
      const result = await cassandra.execute(`SELECT count(*) AS n FROM ${keyspace}.${table}`);
      return Number(result.first()?.get('n'));
    },
  };
}

let sequence = 0;

/** A Feedback row with sensible defaults; `feedback_id` derived from the parts like a use case would. */
export function feedback(parts: Partial<Feedback> & Pick<Feedback, 'customer_id'>): Feedback {
  const usecase = parts.usecase ?? 'spending';
  const variant = parts.variant ?? 'A';
  const n = sequence++;
  return {
    feedback_id: `${usecase}:${variant}:${parts.customer_id}:${n}`,
    usecase,
    variant,
    version: 'v1',
    kind: 'spending_spike',
    severity: 'warning',
    score: 0.5,
    message: 'spent more than usual',
    details: { n: String(n) },
    record_ids: [`r-${n}`],
    event_time: Date.parse('2026-11-20T12:00:00Z') + n,
    produced_at: Date.now(),
    ...parts,
  };
}
