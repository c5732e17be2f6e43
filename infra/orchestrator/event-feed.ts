/**
 * Reads the lifecycle events topic for one subscriber (an SSE client of the control API):
 * first the history it asked for (`since` a time, or the `last` N), then, when following,
 * every new event. Start offsets come from the admin API (offsets by timestamp, or end
 * offsets minus N); a consumer in a throwaway group is seeked to them, commits nothing, and
 * its group is deleted when the subscriber goes away.
 *
 * History is collected until every partition reached the end offset it had when the
 * subscriber arrived, then emitted in time order (so `last` is the last N over all
 * partitions); events that arrive meanwhile are held back and emitted after it.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../shared/logger.ts';
import type { EventsQuery } from './control-routes.ts';

export interface FeedEvent {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  /** Kafka timestamp, epoch ms. */
  readonly timestamp: number;
  /** The event as published (`{ event, at, job, usecase, variant, … }`). */
  readonly value: Record<string, unknown>;
}

export interface FeedSubscriber {
  onEvent(event: FeedEvent): void;
  /** History delivered (and, without follow, the feed is over). */
  onCaughtUp(replayed: number): void;
  onError(error: unknown): void;
}

export interface OpenFeed {
  close(): Promise<void>;
}

/** How long history may take to arrive before what has arrived is sent anyway. */
const REPLAY_DEADLINE_MS = 15_000;

/** Offsets to start each partition at, and the end offsets when the subscriber arrived. */
export interface FeedRange {
  readonly starts: ReadonlyMap<number, bigint>;
  readonly ends: ReadonlyMap<number, bigint>;
}

/** Offsets by timestamp for `since`, end offsets minus N for `last`. */
export async function feedRange(admin: Admin, topic: string, query: EventsQuery): Promise<FeedRange> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const ends = new Map(offsets.map((p) => [p.partition, BigInt(p.high)]));
  const starts = new Map<number, bigint>();
  if (query.since !== undefined) {
    // kafkajs answers the end offset for a partition with nothing at or after the time.
    for (const p of await admin.fetchTopicOffsetsByTimestamp(topic, query.since)) starts.set(p.partition, BigInt(p.offset));
  } else {
    const last = BigInt(query.last ?? 0);
    for (const p of offsets) {
      const low = BigInt(p.low);
      const from = BigInt(p.high) - last;
      starts.set(p.partition, from > low ? from : low);
    }
  }
  return { starts, ends };
}

function parseValue(raw: Buffer | null): Record<string, unknown> {
  const text = raw?.toString('utf8') ?? '';
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // not JSON: passed on as text below
  }
  return { raw: text };
}

const byTime = (a: FeedEvent, b: FeedEvent): number => a.timestamp - b.timestamp || a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset));

/**
 * Starts delivering `range` (from `feedRange`, taken when the subscriber arrived: whatever is
 * published after that is delivered too, however long the consumer takes to join).
 */
export async function openEventFeed(kafka: Kafka, admin: Admin, topic: string, query: EventsQuery, range: FeedRange, subscriber: FeedSubscriber, log: Logger): Promise<OpenFeed> {
  const { starts, ends } = range;
  const pending = new Set([...ends].filter(([partition, end]) => (starts.get(partition) ?? end) < end).map(([partition]) => partition));
  if (pending.size === 0 && !query.follow) {
    subscriber.onCaughtUp(0);
    return { close: async () => undefined };
  }

  const groupId = `diamond.control-api.events.${randomUUID()}`;
  // Short fetch long-polls: disconnecting waits for the one in flight.
  const consumer: Consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 3000, maxWaitTimeInMs: 500, allowAutoTopicCreation: false });
  let history: FeedEvent[] = [];
  let heldBack: FeedEvent[] = [];
  let replaying = true;
  let closed = false;

  const finishReplay = (): void => {
    if (!replaying) return;
    replaying = false;
    clearTimeout(deadline);
    history.sort(byTime);
    if (query.since === undefined) history = history.slice(Math.max(0, history.length - (query.last ?? 0)));
    for (const event of history) subscriber.onEvent(event);
    if (query.follow) for (const event of heldBack) subscriber.onEvent(event);
    subscriber.onCaughtUp(history.length);
    history = [];
    heldBack = [];
  };
  const deadline = setTimeout(() => {
    log.warn({ topic, pending: [...pending] }, 'event history did not arrive in time; sending what arrived');
    finishReplay();
  }, REPLAY_DEADLINE_MS);

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    clearTimeout(deadline);
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined); // it committed nothing; just tidy
  };

  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!closed) subscriber.onError(payload.error);
    });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (closed) return;
        const event: FeedEvent = { partition, offset: message.offset, key: message.key?.toString() ?? null, timestamp: Number(message.timestamp), value: parseValue(message.value) };
        const end = ends.get(partition) ?? 0n;
        const offset = BigInt(message.offset);
        if (!replaying) {
          if (query.follow) subscriber.onEvent(event);
          return;
        }
        if (offset < end) history.push(event);
        else heldBack.push(event);
        if (offset >= end - 1n) pending.delete(partition);
        if (pending.size === 0) finishReplay();
      },
    });
    // Seeks given before the group is joined apply once the partitions are assigned.
    for (const [partition, offset] of starts) consumer.seek({ topic, partition, offset: offset.toString() });
    if (pending.size === 0) finishReplay();
  } catch (error) {
    await close();
    throw error;
  }
  return { close };
}
