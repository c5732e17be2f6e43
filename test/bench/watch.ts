/**
 * A topic watcher for the benches: a consumer that has joined its group before the measured
 * action starts, reads the topic from the beginning with a short fetch wait, and stamps
 * every message with the time it arrived here (optionally decoded), so "the first feedback"
 * is timed when it reaches a client, not when someone thought of looking.
 */
import type { Consumer, Kafka } from 'kafkajs';
import { uniqueName } from '../support/env.ts';

export interface Seen<T> {
  /** Date.now() when the message reached this consumer. */
  readonly at: number;
  readonly key: string | null;
  readonly partition: number;
  readonly value: T;
}

export class TopicWatcher<T = Buffer> {
  readonly seen: Seen<T>[] = [];
  readonly #notify = new Set<() => void>();

  private constructor(private readonly consumer: Consumer, readonly topic: string) {}

  static async start<T = Buffer>(kafka: Kafka, topic: string, decode?: (value: Buffer) => Promise<T> | T): Promise<TopicWatcher<T>> {
    const consumer = kafka.consumer({ groupId: uniqueName('bench-watch'), maxWaitTimeInMs: 100, sessionTimeout: 10_000 });
    const watcher = new TopicWatcher<T>(consumer, topic);
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const at = Date.now();
        const raw = message.value ?? Buffer.alloc(0);
        const value = decode ? await decode(raw) : (raw as T);
        watcher.seen.push({ at, key: message.key?.toString() ?? null, partition, value });
        for (const wake of watcher.#notify) wake();
      },
    });
    await Promise.race([joined, new Promise((_, reject) => setTimeout(() => reject(new Error(`watcher of ${topic} did not join its group in 30 s`)), 30_000))]);
    return watcher;
  }

  /** Resolves with the first non-undefined `find(seen)`, checked on every new message. */
  async waitFor<R>(what: string, find: (seen: readonly Seen<T>[]) => R | undefined, timeoutMs: number): Promise<R> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find(this.seen);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not seen on ${this.topic} within ${Math.round(timeoutMs / 1000)} s (${this.seen.length} messages seen)`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#notify.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        this.#notify.add(done);
      });
    }
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
  }
}

export const json = (value: Buffer): Record<string, unknown> => {
  try {
    return JSON.parse(value.toString()) as Record<string, unknown>;
  } catch {
    return {};
  }
};
