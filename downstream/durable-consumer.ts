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
 *
 * No message can wedge a partition: when a batch fails `poison.maxAttempts` times with an
 * error no retry can fix (`poison.isPermanent`: Cassandra refused the statement itself), its
 * messages are retried one by one, and each one that still fails permanently goes to the
 * rejected topic with its reason (`poison.reject`); then the batch is committed. Outages are
 * never permanent, so they are retried for as long as they last and reject nothing.
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
  /** Called after a poison message was rejected (for metrics). */
  readonly onPoison?: (context: BatchContext & { readonly offset: string; readonly reason: string }) => void;
  /** What to do with a message that keeps failing for a reason no retry can fix. */
  readonly poison?: PoisonPolicy;
  /** kafkajs gave up and will not restart the consumer: the owner must (a stopped writer must not look alive). */
  readonly onFatal?: (error: Error) => void;
}

export interface PoisonPolicy {
  /** Permanent failures of a batch before its messages are tried one by one (and of one message before it is rejected). */
  readonly maxAttempts: number;
  readonly isPermanent: (error: unknown) => boolean;
  /** Must resolve only once the rejection is durable (acknowledged by Kafka). */
  readonly reject: (message: KafkaMessage, reason: string, context: BatchContext) => Promise<void>;
}

type Outcome = { readonly kind: 'handled' } | { readonly kind: 'abandoned' } | { readonly kind: 'permanent'; readonly error: unknown };

interface BatchRun {
  readonly context: BatchContext;
  readonly isCurrent: () => boolean;
  readonly heartbeat: () => Promise<void>;
  readonly pause: () => void;
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
        let resume: (() => void) | undefined;
        const run: BatchRun = {
          context,
          // A stale batch belongs to another member now; leaving without a commit replays it there.
          isCurrent: () => payload.isRunning() && !payload.isStale(),
          heartbeat,
          pause: () => {
            resume ??= payload.pause();
          },
        };
        const outcome = await this.#handleBatch(batch.messages, run);
        if (outcome.kind === 'abandoned') return;
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

  /** The whole batch, then, if it keeps failing permanently, message by message. */
  async #handleBatch(messages: readonly KafkaMessage[], run: BatchRun): Promise<Outcome> {
    const poison = this.#options.poison;
    const whole = await this.#retry(messages, run);
    if (whole.kind !== 'permanent' || !poison) return whole;
    this.#options.logger.warn({ ...run.context, messages: messages.length, error: firstLine(whole.error) }, 'batch keeps failing permanently; trying its messages one by one');
    for (const message of messages) {
      const single = await this.#retry([message], run);
      if (single.kind === 'abandoned') return single;
      if (single.kind === 'permanent') {
        const reason = `not written after ${poison.maxAttempts} attempts: ${firstLine(single.error)}`;
        await poison.reject(message, reason, run.context);
        this.#options.onPoison?.({ ...run.context, offset: message.offset, reason });
        this.#options.logger.error({ ...run.context, offset: message.offset, reason }, 'message sent to the rejected topic; the partition moves on');
      }
    }
    return { kind: 'handled' };
  }

  /**
   * Retries `handle(messages)` with backoff until it succeeds, the batch stops being ours,
   * or (with a poison policy) it failed permanently `maxAttempts` times.
   */
  async #retry(messages: readonly KafkaMessage[], run: BatchRun): Promise<Outcome> {
    const { initialMs, maxMs } = this.#options.backoff ?? { initialMs: 250, maxMs: 15_000 };
    const poison = this.#options.poison;
    let permanent = 0;
    for (let attempt = 1; ; attempt++) {
      if (!run.isCurrent()) return { kind: 'abandoned' };
      try {
        await this.#options.handle(messages, run.context);
        return { kind: 'handled' };
      } catch (error) {
        run.pause();
        this.#options.onRetry?.({ ...run.context, attempt, error });
        if (poison?.isPermanent(error) && ++permanent >= poison.maxAttempts) return { kind: 'permanent', error };
        const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 16)) * (0.75 + Math.random() * 0.5);
        this.#options.logger.warn({ ...run.context, attempt, messages: messages.length, delayMs: Math.round(delay), error: firstLine(error) }, 'batch not written; partition paused, retrying');
        if (!(await this.#sleepWithHeartbeats(delay, run.heartbeat))) return { kind: 'abandoned' };
      }
    }
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

function firstLine(error: unknown): string {
  return (errorMessage(error).split('\n')[0] ?? '').slice(0, 300);
}
