/**
 * A Kafka consumer group whose offsets only move after the batch was handled.
 *
 *   const consumer = new DurableConsumer({ kafka, topic, groupId, logger, handle: writeRows });
 *   await consumer.start();
 *
 * Guarantee: `handle(batch)` resolved ⇒ then, and only then, the batch's offsets are
 * committed. A crash or a rebalance before that replays the batch, never skips it, so
 * `handle` must be idempotent (the writers upsert by id).
 *
 * When `handle` throws (Cassandra or Redis unreachable), the partition is paused — no more
 * fetching — and the same batch is retried with exponential backoff while heartbeats keep
 * the group membership; on success the partition resumes. Nothing is lost or skipped.
 */
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

export interface BatchContext {
  readonly topic: string;
  readonly partition: number;
}

export interface DurableConsumerOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly groupId: string;
  readonly logger: Logger;
  /** Must be idempotent; throw to have the same batch retried. */
  readonly handle: (messages: readonly KafkaMessage[], context: BatchContext) => Promise<void>;
  /** Where a new group starts (default: the beginning, so nothing produced before the first start is missed). */
  readonly fromBeginning?: boolean;
  readonly partitionsConsumedConcurrently?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Called after every committed batch (for metrics). */
  readonly onCommitted?: (context: BatchContext & { readonly messages: number; readonly offset: string }) => void;
  readonly onRetry?: (context: BatchContext & { readonly attempt: number; readonly error: unknown }) => void;
  /** kafkajs gave up and will not restart the consumer: the owner must (a stopped writer must not look alive). */
  readonly onFatal?: (error: Error) => void;
}

export class DurableConsumer {
  readonly #options: DurableConsumerOptions;
  readonly #consumer: Consumer;
  #running = false;
  /** Resolves when the consumer first joined its group (and is about to fetch). */
  readonly joined: Promise<void>;

  constructor(options: DurableConsumerOptions) {
    this.#options = options;
    // A short session lets the group notice a killed writer quickly (DESIGN §8: back to work ≤ 30 s).
    this.#consumer = options.kafka.consumer({ groupId: options.groupId, maxBytesPerPartition: 4 * 1024 * 1024, sessionTimeout: 10_000, heartbeatInterval: 2_000 });
    this.joined = new Promise((resolve) => {
      this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => resolve());
    });
    this.#consumer.on(this.#consumer.events.CRASH, ({ payload }) => {
      options.logger.error({ groupId: payload.groupId, restart: payload.restart, error: payload.error.message }, 'consumer crashed');
      if (!payload.restart && this.#running) options.onFatal?.(payload.error);
    });
  }

  async start(): Promise<void> {
    const { topic, groupId, logger } = this.#options;
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topic, fromBeginning: this.#options.fromBeginning ?? true });
    this.#running = true;
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#options.partitionsConsumedConcurrently ?? 3,
      eachBatch: async (payload) => {
        const { batch } = payload;
        const heartbeat = (): Promise<void> => payload.heartbeat();
        const last = batch.messages.at(-1);
        if (!last) return;
        const context = { topic: batch.topic, partition: batch.partition };
        const { initialMs, maxMs } = this.#options.backoff ?? { initialMs: 250, maxMs: 15_000 };
        let resume: (() => void) | undefined;
        for (let attempt = 1; ; attempt++) {
          // A stale batch belongs to another member now; leaving without a commit replays it there.
          if (!payload.isRunning() || payload.isStale()) return;
          try {
            await this.#options.handle(batch.messages, context);
            break;
          } catch (error) {
            resume ??= payload.pause();
            this.#options.onRetry?.({ ...context, attempt, error });
            const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 16)) * (0.75 + Math.random() * 0.5);
            logger.warn({ ...context, attempt, delayMs: Math.round(delay), error: errorMessage(error).split('\n')[0]?.slice(0, 300) }, 'batch not written; partition paused, retrying');
            if (!(await this.#sleepWithHeartbeats(delay, heartbeat))) return;
          }
        }
        const next = (BigInt(last.offset) + 1n).toString();
        payload.resolveOffset(last.offset);
        await this.#consumer.commitOffsets([{ ...context, offset: next }]);
        if (resume) {
          resume();
          logger.info(context, 'batch written after retries; partition resumed');
        }
        this.#options.onCommitted?.({ ...context, messages: batch.messages.length, offset: next });
        await heartbeat();
      },
    });
    logger.info({ topic, groupId }, 'consuming');
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await this.#consumer.disconnect();
  }

  /** Sleeps `ms` while heartbeating; false when the group rebalanced (the batch is no longer ours). */
  async #sleepWithHeartbeats(ms: number, heartbeat: () => Promise<void>): Promise<boolean> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (!this.#running) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, until - Date.now())));
      try {
        await heartbeat();
      } catch {
        return false;
      }
    }
    return true;
  }
}
