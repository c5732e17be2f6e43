/** Redis client (ioredis) built from the config, with a readiness check. */
import { existsSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { DiamondConfig } from './config.ts';
import { ServiceUnavailableError } from './errors.ts';
import { readCaFile } from './secret-file.ts';

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

/** The ACL user, its password and, for rediss://, TLS with the configured CA. */
function credentials(config: Pick<DiamondConfig, 'redis'>): { username?: string; password?: string; tls?: { ca: string[] } } {
  const password = redisPassword(config);
  const ca = config.redis.url.startsWith('rediss:') ? readCaFile('DIAMOND_REDIS_CA_FILE', config.redis.caFile) : undefined;
  return {
    ...(config.redis.username !== null ? { username: config.redis.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(ca !== undefined ? { tls: { ca: [ca] } } : {}),
  };
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
    cause: withoutCommand(cause),
    ...(auth ? { hint: `Redis refused our credentials: put the password in ${config.redis.passwordFile} (DIAMOND_REDIS_PASSWORD_FILE) or in DIAMOND_REDIS_URL (redis://:password@host:port)` } : {}),
  });
}

/**
 * ioredis' ReplyError carries the failed command with its arguments (`command.args`): for a
 * refused AUTH that is the user and the password, which any log line or JSON of the error
 * would then show. Kept: name, message, stack.
 */
export function withoutCommand(cause: unknown): unknown {
  if (!(cause instanceof Error) || !('command' in cause)) return cause;
  const copy = new Error(cause.message);
  copy.name = cause.name;
  copy.stack = cause.stack;
  return copy;
}

export async function checkRedis(config: Pick<DiamondConfig, 'redis'>): Promise<{ version: string }> {
  const client = new Redis(config.redis.url, { ...credentials(config), lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Reported through the rejected promise below; a refused AUTH only shows here (the promise
  // then says "Connection is closed"), so the last one is kept as the cause.
  let refused: unknown;
  client.on('error', (error: Error) => {
    if (/NOAUTH|WRONGPASS|NOPERM/.test(error.message)) refused = error;
  });
  try {
    await client.connect();
    const pong: string = await client.ping();
    if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
    const info = await client.info('server');
    return { version: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown' };
  } catch (cause) {
    throw redisUnavailable(config, refused ?? cause);
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
