/** Redis client (ioredis) built from the config, with a readiness check. */
import { existsSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { DiamondConfig } from './config.ts';
import { ServiceUnavailableError } from './errors.ts';

export interface RedisClientOptions {
  /** Prefix for every key this client touches (tests use a unique one each). */
  readonly keyPrefix?: string;
}

/**
 * The password clients send: the URL's, else the password file's. Read when a client is made,
 * not at config load: `diamond up` generates the file in the same process that then connects.
 */
export function redisPassword(config: Pick<DiamondConfig, 'redis'>): string | undefined {
  if (config.redis.password !== null) return config.redis.password;
  if (!existsSync(config.redis.passwordFile)) return undefined;
  return readFileSync(config.redis.passwordFile, 'utf8').trim() || undefined;
}

function credentials(config: Pick<DiamondConfig, 'redis'>): { username?: string; password?: string } {
  const password = redisPassword(config);
  return { ...(config.redis.username !== null ? { username: config.redis.username } : {}), ...(password !== undefined ? { password } : {}) };
}

export function createRedis(config: Pick<DiamondConfig, 'redis'>, options: RedisClientOptions = {}): Redis {
  return new Redis(config.redis.url, {
    ...credentials(config),
    keyPrefix: options.keyPrefix,
    connectTimeout: 3000,
    maxRetriesPerRequest: 3,
    lazyConnect: true,
  });
}

/** Redis could not be used: unreachable, or (NOAUTH/WRONGPASS) it refused our credentials, said with where they come from. */
export function redisUnavailable(config: Pick<DiamondConfig, 'redis'>, cause: unknown): ServiceUnavailableError {
  const auth = /NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(String((cause as Error | undefined)?.message));
  return new ServiceUnavailableError('Redis', config.redis.url, {
    cause,
    ...(auth ? { hint: `Redis refused our credentials: put the password in ${config.redis.passwordFile} (DIAMOND_REDIS_PASSWORD_FILE) or in DIAMOND_REDIS_URL (redis://:password@host:port)` } : {}),
  });
}

export async function checkRedis(config: Pick<DiamondConfig, 'redis'>): Promise<{ version: string }> {
  const client = new Redis(config.redis.url, { ...credentials(config), lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined); // reported through the rejected promise below
  try {
    await client.connect();
    const pong: string = await client.ping();
    if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
    const info = await client.info('server');
    return { version: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown' };
  } catch (cause) {
    throw redisUnavailable(config, cause);
  } finally {
    client.disconnect();
  }
}

/**
 * Keys matching `pattern` under the client's key prefix, returned without it (SCAN, so a
 * large keyspace is walked in steps; ioredis does not apply the prefix to SCAN patterns).
 */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const prefix = redis.options.keyPrefix ?? '';
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}${pattern}`, 'COUNT', 500);
    cursor = next;
    for (const key of batch) keys.push(key.slice(prefix.length));
  } while (cursor !== '0');
  return [...new Set(keys)].sort();
}
