/**
 * Sources and their API keys, in Redis. Only a sha256 of each key is stored, so a Redis
 * dump does not leak keys; the key itself is shown once, when the source is added.
 *
 *   const sources = new SourceStore(redis);
 *   const { apiKey } = await sources.add('shop', { rename: { cust_id: 'customer_id' } });
 *   const source = await sources.authenticate(apiKey);   // { name: 'shop', mapping } | null
 *
 * Keys (under the client's keyPrefix): `source:<name>` hash {key_sha256, mapping, created_at},
 * `apikey:<sha256>` → name.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { scanKeys } from '../shared/redis.ts';
import { DiamondError } from '../shared/errors.ts';
import { parseMapping, resolveMapping, type SourceMapping } from './mapping.ts';
import type { SourceRef } from './pipeline.ts';

/** Source names end up in topic names (records.raw.<source>), so they are kept topic-safe. */
const SOURCE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Authenticated keys are remembered briefly so a busy client does not cost a Redis trip per request. */
const CACHE_MS = 5_000;

export class UnknownSourceError extends DiamondError {
  constructor(name: string) {
    super(`no source named "${name}"`, { code: 'DIAMOND_SOURCE_UNKNOWN', hint: `add it with \`npx diamond source add ${name}\`` });
  }
}

export class SourceExistsError extends DiamondError {
  constructor(name: string) {
    super(`source "${name}" already exists`, { code: 'DIAMOND_SOURCE_EXISTS', hint: 'use --rotate-key to replace its API key' });
  }
}

export function hashApiKey(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex');
}

export function validateSourceName(name: string): string {
  if (!SOURCE_NAME.test(name)) {
    throw new DiamondError(`source name "${name}" is not allowed`, { code: 'DIAMOND_SOURCE_NAME_INVALID', hint: 'use 1–64 lower-case letters, digits, _ and -, starting with a letter or digit' });
  }
  return name;
}

export class SourceStore {
  readonly #redis: Redis;
  readonly #cache = new Map<string, { source: SourceRef | null; until: number }>();

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Creates a source (or replaces its key with `rotateKey`) and returns the new API key, the only time it is visible. */
  async add(name: string, mapping: Partial<SourceMapping> = {}, options: { rotateKey?: boolean } = {}): Promise<{ apiKey: string }> {
    validateSourceName(name);
    const checked = parseMapping(mapping);
    const previous = await this.#redis.hget(`source:${name}`, 'key_sha256');
    if (previous !== null && !options.rotateKey) throw new SourceExistsError(name);
    const apiKey = `dmd_${name}_${randomBytes(24).toString('base64url')}`;
    const keyHash = hashApiKey(apiKey);
    const transaction = this.#redis.multi();
    if (previous !== null) transaction.del(`apikey:${previous}`);
    transaction.hset(`source:${name}`, { key_sha256: keyHash, mapping: JSON.stringify(checked), created_at: new Date().toISOString() });
    transaction.set(`apikey:${keyHash}`, name);
    await transaction.exec();
    return { apiKey };
  }

  /** A new key for an existing source, its mapping kept; the old key stops working. */
  async rotate(name: string): Promise<{ apiKey: string }> {
    const source = await this.#redis.hget(`source:${validateSourceName(name)}`, 'mapping');
    if (source === null) throw new UnknownSourceError(name);
    return this.add(name, JSON.parse(source) as Partial<SourceMapping>, { rotateKey: true });
  }

  /**
   * The source's key stops working (its mapping is kept, so `rotate` can issue a new key).
   * Ingest processes cache a key's source for at most CACHE_MS, so a revocation takes
   * effect everywhere within that time. False when the source had no key.
   */
  async revoke(name: string): Promise<boolean> {
    const previous = await this.#redis.hget(`source:${validateSourceName(name)}`, 'key_sha256');
    if (previous === null) {
      if ((await this.#redis.exists(`source:${name}`)) === 0) throw new UnknownSourceError(name);
      return false;
    }
    await this.#redis.multi().del(`apikey:${previous}`).hdel(`source:${name}`, 'key_sha256').exec();
    return true;
  }

  /** The source a key belongs to, or null for a wrong key. */
  async authenticate(apiKey: string): Promise<SourceRef | null> {
    const keyHash = hashApiKey(apiKey);
    const cached = this.#cache.get(keyHash);
    if (cached && cached.until > Date.now()) return cached.source;
    const name = await this.#redis.get(`apikey:${keyHash}`);
    const source = name === null ? null : await this.find(name);
    this.#cache.set(keyHash, { source, until: Date.now() + CACHE_MS });
    return source;
  }

  async find(name: string): Promise<SourceRef | null> {
    const mapping = await this.#redis.hget(`source:${name}`, 'mapping');
    if (mapping === null) return null;
    return { name, mapping: resolveMapping(parseMapping(JSON.parse(mapping))) };
  }

  /** Every source: its name, whether it has a key, and when it was created (never the key). */
  async list(): Promise<{ name: string; hasKey: boolean; createdAt: string | null }[]> {
    const names = (await scanKeys(this.#redis, 'source:*')).map((key) => key.slice('source:'.length));
    return Promise.all(names.map(async (name) => {
      const [keyHash, createdAt] = await this.#redis.hmget(`source:${name}`, 'key_sha256', 'created_at');
      return { name, hasKey: keyHash !== null && keyHash !== undefined, createdAt: createdAt ?? null };
    }));
  }

  async get(name: string): Promise<SourceRef> {
    const source = await this.find(validateSourceName(name));
    if (!source) throw new UnknownSourceError(name);
    return source;
  }
}
