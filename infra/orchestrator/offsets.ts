/**
 * Offsets live in Kafka: each job's consumer group `uc.<usecase>.<variant>` holds the end
 * offsets of its last finished batch. Jobs never join the group (they only report), so the
 * group stays empty and the admin API may set its offsets.
 */
import type { Admin, Kafka } from 'kafkajs';
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
export async function commitJobOffsets(kafka: Kafka, admin: Admin, groupId: string, topic: string, reported: PartitionOffsets): Promise<CommitOutcome> {
  const ends = await topicEndOffsets(admin, topic);
  for (const [partition, offset] of Object.entries(reported)) {
    const high = ends[partition];
    if (high === undefined || offset > high) return { committed: false, partition, offset, highWatermark: high ?? null };
  }
  const advance = offsetsToAdvance(await readJobOffsets(admin, groupId, topic), reported);
  const partitions = Object.entries(advance).map(([partition, offset]) => ({ partition: Number(partition), offset: String(offset) }));
  if (partitions.length > 0) await setGroupOffsets(kafka, groupId, topic, partitions);
  return { committed: true, advanced: advance };
}

/** The group has members (a commit by someone else holds it): its offsets cannot be set now; retry later. */
export class GroupNotEmptyError extends Error {
  constructor(readonly groupId: string, readonly state: string) {
    super(`the consumer group ${groupId} must have no running instances to set its offsets; its state is ${state}`);
    this.name = 'GroupNotEmptyError';
  }
}

/** How long the committing consumer waits in its one fetch before it leaves the group. */
const SET_OFFSETS_FETCH_WAIT_MS = 50;

/**
 * Sets the committed offsets of an empty consumer group (a job's: jobs never join it), as
 * kafkajs' `admin.setOffsets` does: a consumer joins the group, seeks (which commits) and
 * leaves after its first fetch. Its consumer, though, fetches with the default 5 s wait
 * (with its partitions paused it just sleeps it out), so every commit took 5 s; the
 * progress ingest handles one report at a time, so a job reporting a batch more often than
 * every 5 s put it ever further behind, and an upgrade's handover (which waits for the old
 * version's `stopped` report, behind all of that) waited the backlog out, up to the stop
 * grace. Here the fetch waits 50 ms. GroupNotEmptyError when the group has members.
 */
export async function setGroupOffsets(kafka: Kafka, groupId: string, topic: string, partitions: readonly { partition: number; offset: string }[]): Promise<void> {
  if (partitions.length === 0) return;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: SET_OFFSETS_FETCH_WAIT_MS });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const { state } = await consumer.describeGroup();
    if (state !== 'Empty' && state !== 'Dead') throw new GroupNotEmptyError(groupId, state);
    await new Promise<void>((resolve, reject) => {
      // The seeks are committed at the start of the first fetch; the fetch event comes after it.
      consumer.on(consumer.events.FETCH, () => void consumer.stop().then(resolve, reject));
      consumer.run({ eachBatchAutoResolve: false, eachBatch: async () => undefined }).catch(reject);
      consumer.pause([{ topic }]); // it reads nothing
      for (const { partition, offset } of partitions) consumer.seek({ topic, partition, offset });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

/**
 * End offsets of `topic`, or null when it does not exist (yet). Asked first with listTopics:
 * kafkajs adds every topic an admin call names to the cluster's targets for good, so one call
 * about a missing topic makes each later metadata refresh of that client fail, whatever it
 * is for (seen as 500s of unrelated control API calls).
 */
export async function endOffsetsIfExists(admin: Admin, topic: string): Promise<Record<string, number> | null> {
  if (!(await admin.listTopics()).includes(topic)) return null;
  return topicEndOffsets(admin, topic);
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
