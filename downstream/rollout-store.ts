/**
 * Rollout weights per use case, in Redis (hash `rollout:<usecase>`, field = variant,
 * value = weight). `diamond rollout` writes them; the feedback writer reads them for every
 * batch, so a change applies to the next batch without restarting anything.
 *
 * No weights stored for a use case means it has one variant as far as downstream knows:
 * its rows pass straight through to customers.
 */
import type { Redis } from 'ioredis';
import { validateWeights, type Weights } from './assign-variant.ts';

const key = (usecase: string): string => `rollout:${usecase}`;

export class RolloutStore {
  readonly #redis: Redis;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Replaces the weights of one use case atomically (old variants not named are dropped). */
  async set(usecase: string, weights: Weights): Promise<void> {
    validateWeights(weights);
    await this.#redis.multi().del(key(usecase)).hset(key(usecase), weights).exec();
  }

  async get(usecase: string): Promise<Weights | null> {
    return (await this.getMany([usecase])).get(usecase) ?? null;
  }

  /** One round trip for every use case of a batch. */
  async getMany(usecases: Iterable<string>): Promise<Map<string, Weights | null>> {
    const names = [...new Set(usecases)];
    const result = new Map<string, Weights | null>();
    if (names.length === 0) return result;
    const pipeline = this.#redis.pipeline();
    for (const name of names) pipeline.hgetall(key(name));
    const replies = (await pipeline.exec()) ?? [];
    names.forEach((name, index) => {
      const [error, value] = replies[index] ?? [new Error('no reply'), null];
      if (error) throw error;
      const fields = value as Record<string, string>;
      const entries = Object.entries(fields).map(([variant, weight]) => [variant, Number(weight)] as const);
      result.set(name, entries.length === 0 ? null : Object.fromEntries(entries));
    });
    return result;
  }
}
