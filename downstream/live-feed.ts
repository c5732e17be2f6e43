/**
 * Delivered feedback, live: the writer publishes the rows Cassandra acknowledged on one
 * Redis channel; each API process subscribes once and fans out to its SSE connections of
 * the matching customer. (Pub/sub ignores ioredis' keyPrefix, so the prefix is added here.)
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.ts';
import type { Feedback } from '../shared/schemas.ts';

export type FeedbackListener = (row: Feedback) => void;

export class LiveFeed {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #logger: Logger;
  readonly #channel: string;
  readonly #listeners = new Map<string, Set<FeedbackListener>>();
  #started = false;

  constructor(publisher: Redis, subscriber: Redis, logger: Logger) {
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#logger = logger;
    this.#channel = `${publisher.options.keyPrefix ?? ''}feedback:delivered`;
  }

  async start(): Promise<void> {
    this.#subscriber.on('message', (_channel: string, text: string) => this.#dispatch(text));
    await this.#subscriber.subscribe(this.#channel);
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (this.#started) await this.#subscriber.unsubscribe(this.#channel).catch(() => undefined);
    this.#listeners.clear();
  }

  /** Fire and forget: the rows are already in Cassandra, the live stream is best effort. */
  publish(rows: readonly Feedback[]): void {
    this.#publisher.publish(this.#channel, JSON.stringify(rows)).catch((error: unknown) => this.#logger.warn({ error: String(error) }, 'live feed publish failed'));
  }

  /** Listens to one customer's delivered feedback; returns the unsubscribe function. */
  listen(customerId: string, listener: FeedbackListener): () => void {
    let set = this.#listeners.get(customerId);
    if (!set) this.#listeners.set(customerId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(customerId);
    };
  }

  #dispatch(text: string): void {
    let rows: Feedback[];
    try {
      rows = JSON.parse(text) as Feedback[];
    } catch {
      return;
    }
    for (const row of rows) for (const listener of this.#listeners.get(row.customer_id) ?? []) listener(row);
  }
}
