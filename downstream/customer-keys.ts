/**
 * Customer API keys. Only the sha256 of a key is stored (Redis `apikey:<sha256>` →
 * customer id), so a leaked Redis dump does not leak keys; the key itself is shown once,
 * by `diamond customer add`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DiamondError } from '../shared/errors.ts';
import { scanKeys } from '../shared/redis.ts';

const CUSTOMER_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export class InvalidCustomerIdError extends DiamondError {
  constructor(id: string) {
    super(`"${id}" is not a customer id`, { code: 'DIAMOND_CUSTOMER_ID_INVALID', hint: 'use 1–128 letters, digits, . _ : or -' });
  }
}

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export class CustomerKeys {
  readonly #redis: Redis;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Creates a new key for the customer and returns it (the only time it is visible). */
  async add(customerId: string): Promise<string> {
    if (!CUSTOMER_ID.test(customerId)) throw new InvalidCustomerIdError(customerId);
    const key = `dmd_${randomBytes(24).toString('base64url')}`;
    const hash = hashKey(key);
    await this.#redis.multi().set(`apikey:${hash}`, customerId).sadd(`customer:${customerId}:keys`, hash).exec();
    return key;
  }

  /** The customer the key belongs to, or null. */
  async authenticate(key: string): Promise<string | null> {
    if (!key.startsWith('dmd_') || key.length > 200) return null;
    return this.#redis.get(`apikey:${hashKey(key)}`);
  }

  /** Revokes every key of the customer and creates a new one, in one transaction. */
  async rotate(customerId: string): Promise<{ key: string; revoked: number }> {
    if (!CUSTOMER_ID.test(customerId)) throw new InvalidCustomerIdError(customerId);
    const hashes = await this.#redis.smembers(`customer:${customerId}:keys`);
    const key = `dmd_${randomBytes(24).toString('base64url')}`;
    const hash = hashKey(key);
    const transaction = this.#redis.multi();
    if (hashes.length > 0) transaction.del(...hashes.map((old) => `apikey:${old}`), `customer:${customerId}:keys`);
    await transaction.set(`apikey:${hash}`, customerId).sadd(`customer:${customerId}:keys`, hash).exec();
    return { key, revoked: hashes.length };
  }

  /** Every customer with at least one key, and how many keys it has (never the keys). */
  async list(): Promise<{ customer: string; keys: number }[]> {
    const sets = await scanKeys(this.#redis, 'customer:*:keys');
    return Promise.all(sets.map(async (set) => ({ customer: set.slice('customer:'.length, -':keys'.length), keys: await this.#redis.scard(set) })));
  }

  /** Revokes every key of the customer; returns how many there were. */
  async revokeAll(customerId: string): Promise<number> {
    const hashes = await this.#redis.smembers(`customer:${customerId}:keys`);
    if (hashes.length > 0) await this.#redis.del(...hashes.map((hash) => `apikey:${hash}`), `customer:${customerId}:keys`);
    return hashes.length;
  }
}
