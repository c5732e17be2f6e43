/**
 * Offsets live in Kafka: each job's consumer group `uc.<usecase>.<variant>` holds the end
 * offsets of its last finished batch. Jobs never join the group (they only report), so the
 * group stays empty and the admin API may set its offsets.
 */
import type { Admin } from 'kafkajs';
import { offsetsToAdvance, startingOffsetsArgument, type PartitionOffsets } from './state.ts';

/** Committed offsets of `groupId` on `topic` (partition → offset; -1 when none). */
export async function readJobOffsets(admin: Admin, groupId: string, topic: string): Promise<Record<string, number>> {
  const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return Object.fromEntries((entry?.partitions ?? []).map((p) => [String(p.partition), Number(p.offset)]));
}

/** What a report would commit: what advanced, or why nothing may move at all. */
export type CommitOutcome =
  | { readonly committed: true; readonly advanced: Record<string, number> }
  | { readonly committed: false; readonly partition: string; readonly offset: number; readonly highWatermark: number | null };

/**
 * Commits the reported end offsets, partition by partition, never backwards. A report naming
 * an offset beyond its partition's high watermark (or a partition the topic does not have) is
 * forged or buggy: nothing of it is committed, since moving the group there would skip data
 * that has not even been written yet.
 */
export async function commitJobOffsets(admin: Admin, groupId: string, topic: string, reported: PartitionOffsets): Promise<CommitOutcome> {
  const ends = await topicEndOffsets(admin, topic);
  for (const [partition, offset] of Object.entries(reported)) {
    const high = ends[partition];
    if (high === undefined || offset > high) return { committed: false, partition, offset, highWatermark: high ?? null };
  }
  const advance = offsetsToAdvance(await readJobOffsets(admin, groupId, topic), reported);
  const partitions = Object.entries(advance).map(([partition, offset]) => ({ partition: Number(partition), offset: String(offset) }));
  if (partitions.length > 0) await admin.setOffsets({ groupId, topic, partitions });
  return { committed: true, advanced: advance };
}

/** End (high-water) offsets of every partition of `topic`. */
export async function topicEndOffsets(admin: Admin, topic: string): Promise<Record<string, number>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return Object.fromEntries(offsets.map((p) => [String(p.partition), Number(p.high)]));
}

/** The `--starting-offsets` of a job: what its group committed, else `fallback`. */
export async function startingOffsetsFor(admin: Admin, groupId: string, topic: string, fallback: 'earliest' | 'latest'): Promise<string> {
  const partitions = (await admin.fetchTopicOffsets(topic)).map((p) => p.partition).sort((a, b) => a - b);
  return startingOffsetsArgument(topic, partitions, await readJobOffsets(admin, groupId, topic), fallback);
}
