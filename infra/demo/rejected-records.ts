/**
 * Where the demo's rejected records went: the envelopes upstream wrote to records.rejected
 * while the demo streamed (between two snapshots of the topic's end offsets), read back with
 * a throwaway consumer group that commits nothing and is deleted afterwards.
 */
import { randomUUID } from 'node:crypto';
import type { Admin } from 'kafkajs';
import type { DiamondConfig } from '../../shared/config.ts';
import { createKafka } from '../../shared/kafka.ts';
import { Topics } from '../../shared/topics.ts';
import type { RejectedEnvelope } from '../../upstream/index.ts';

export type TopicOffsets = ReadonlyMap<number, bigint>;

export async function topicEnds(admin: Admin, topic: string): Promise<TopicOffsets> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
}

export interface RejectedSummary {
  readonly topic: string;
  /** Envelopes of the demo source between the two snapshots. */
  readonly count: number;
  readonly byProblem: Readonly<Record<string, number>>;
  /** One envelope per distinct first reason, in topic order. */
  readonly examples: readonly RejectedEnvelope[];
}

const READ_TIMEOUT_MS = 20_000;

/** First reason's field and problem with the specifics (values, positions) cut off. */
export function problemKind(envelope: Pick<RejectedEnvelope, 'reasons'>): string {
  const reason = envelope.reasons[0];
  if (!reason) return 'unknown';
  return `${reason.field}: ${reason.problem.replace(/\s*\(.*$/, '').replace(/, got .*$/, '').replace(/^".*?" /, '')}`;
}

export async function readRejected(config: DiamondConfig, from: TopicOffsets, to: TopicOffsets, source: string): Promise<RejectedSummary> {
  const topic = Topics.rejectedRecords;
  const pending = new Set([...to].filter(([partition, end]) => end > (from.get(partition) ?? 0n)).map(([partition]) => partition));
  const envelopes: RejectedEnvelope[] = [];
  if (pending.size > 0) {
    const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-demo` });
    const groupId = `diamond.demo.rejected.${randomUUID().slice(0, 8)}`;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
    const admin = kafka.admin();
    try {
      await consumer.connect();
      await admin.connect();
      await consumer.subscribe({ topic, fromBeginning: false });
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`records.rejected was not read back within ${READ_TIMEOUT_MS / 1000} s`)), READ_TIMEOUT_MS);
        void consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const offset = BigInt(message.offset);
            const end = to.get(partition) ?? 0n;
            if (offset < end && offset >= (from.get(partition) ?? 0n) && message.value) {
              const envelope = JSON.parse(message.value.toString()) as RejectedEnvelope;
              if (envelope.source === source) envelopes.push(envelope);
            }
            if (offset >= end - 1n) pending.delete(partition);
            if (pending.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        }).catch(reject);
      });
      // Seeks given before the group is joined apply once the partitions are assigned.
      for (const partition of pending) consumer.seek({ topic, partition, offset: String(from.get(partition) ?? 0n) });
      await done;
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined); // it committed nothing; just tidy
      await admin.disconnect().catch(() => undefined);
    }
  }
  const byProblem: Record<string, number> = {};
  const examples: RejectedEnvelope[] = [];
  for (const envelope of envelopes) {
    const kind = problemKind(envelope);
    if (!(kind in byProblem)) examples.push(envelope);
    byProblem[kind] = (byProblem[kind] ?? 0) + 1;
  }
  return { topic, count: envelopes.length, byProblem, examples };
}
