/**
 * Rollout weights per use case: the contract between whoever sets them (`diamond rollout`, the
 * control API's `PUT /v1/rollouts/<usecase>`, the dashboard) and the feedback writer that
 * applies them. In Redis, hash `rollout:<usecase>`, field = variant, value = weight; the writer
 * reads them for every batch, so a change applies to the next batch without restarting anything.
 *
 * No weights stored for a use case means it has one variant as far as downstream knows:
 * its rows pass straight through to customers.
 */
import type { Redis } from 'ioredis';
import { DiamondError } from './errors.ts';

/** Share of each variant, e.g. { A: 90, B: 10 }. Only the ratios matter. */
export type Weights = Readonly<Record<string, number>>;

export class InvalidWeightsError extends DiamondError {
  constructor(message: string) {
    super(message, { code: 'DIAMOND_ROLLOUT_WEIGHTS_INVALID', hint: 'write weights as VARIANT=NUMBER pairs, e.g. A=90,B=10 (non-negative, at least one above 0)' });
  }
}

/** `'A=90,B=10'` → `{ A: 90, B: 10 }`; throws InvalidWeightsError naming the bad part. */
export function parseWeights(text: string): Weights {
  const weights: Record<string, number> = {};
  for (const part of text.split(',').map((item) => item.trim()).filter(Boolean)) {
    const match = /^([A-Za-z0-9_-]{1,32})=(\d+(?:\.\d+)?)$/.exec(part);
    if (!match?.[1] || match[2] === undefined) throw new InvalidWeightsError(`"${part}" is not VARIANT=NUMBER`);
    if (match[1] in weights) throw new InvalidWeightsError(`variant ${match[1]} is given twice`);
    weights[match[1]] = Number(match[2]);
  }
  validateWeights(weights);
  return weights;
}

export function validateWeights(weights: Weights): void {
  const values = Object.values(weights);
  if (values.length === 0) throw new InvalidWeightsError('no weights given');
  if (values.some((value) => !Number.isFinite(value) || value < 0)) throw new InvalidWeightsError('weights must be non-negative numbers');
  if (!values.some((value) => value > 0)) throw new InvalidWeightsError('every weight is 0');
}

export function formatWeights(weights: Weights): string {
  return Object.keys(weights).sort().map((variant) => `${variant}=${weights[variant]}`).join(',');
}

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
