/**
 * Redis from Debian's redis-server package, one durable instance on loopback.
 *
 * Redis holds everything the platform is told (deployments, job records, tokens, source and
 * customer keys, rollout weights, the cursor secret), so it runs with the append-only file:
 * every acknowledged write is in the AOF (written before the reply), so a restart or a
 * `kill -9` of Redis loses nothing; `appendfsync everysec` bounds what a crash of the
 * machine itself can lose to the last second of writes.
 *
 * It requires a password (generated once into a 0600 file, DIAMOND_REDIS_PASSWORD_FILE): any
 * local process, a use case job included, could otherwise connect and write itself a token.
 * The password reaches redis-server in a 0600 config file, never its command line (which
 * every user can read in /proc).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { parseHostPort } from '../../shared/config.ts';
import { ServiceStartError } from '../../shared/errors.ts';
import { checkRedis, createRedis, redisPassword } from '../../shared/redis.ts';
import { runLogged } from '../../shared/install-cache.ts';
import { servicePaths, type LocalService } from './service.ts';
import { redisAclLines } from './security.ts';

const REDIS_SERVER = '/usr/bin/redis-server';

/** AOF on, fsync every second; RDB snapshots off (the AOF, with its RDB preamble, is the copy). */
const DURABILITY: Readonly<Record<string, string>> = { appendonly: 'yes', appendfsync: 'everysec', save: '' };
const DURABILITY_ARGS = Object.entries(DURABILITY).flatMap(([name, value]) => [`--${name}`, value]);

/** The password the local Redis requires: the URL's, else the password file's, generated on first use. */
function localPassword(config: DiamondConfig): string {
  const known = redisPassword(config);
  if (known !== undefined) return known;
  const password = randomBytes(24).toString('hex');
  mkdirSync(dirname(config.redis.passwordFile), { recursive: true });
  try {
    writeFileSync(config.redis.passwordFile, password + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error; // a concurrent `up` wrote it first: its password wins
  }
  return readFileSync(config.redis.passwordFile, 'utf8').trim();
}

function redisHostPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return parseHostPort('DIAMOND_REDIS_URL', `${parsed.hostname}:${parsed.port || '6379'}`);
}

export const redisService: LocalService = {
  name: 'redis',
  readyTimeoutMs: 15_000,
  address: (config) => config.redis.url,
  host: (config) => redisHostPort(config.redis.url).host,
  check: async (config) => {
    await checkRedis(config);
  },
  // An instance started by an earlier version of this file runs without the AOF, or without
  // a password: switch them on in place (Redis rewrites the AOF from memory first; connected
  // clients stay authenticated), so `up` never leaves state volatile or open.
  ensureConfigured: async (config) => {
    const client = createRedis(config);
    client.on('error', () => undefined);
    try {
      await client.connect();
      const changed: string[] = [];
      for (const [name, value] of Object.entries(DURABILITY)) {
        const [, current] = (await client.config('GET', name)) as [string, string];
        if (current === value) continue;
        await client.config('SET', name, value);
        changed.push(`${name}=${value || "''"}`);
      }
      const password = localPassword(config);
      const [, current] = (await client.config('GET', 'requirepass')) as [string, string];
      const locked = current !== password;
      if (locked) await client.config('SET', 'requirepass', password);
      const said = [
        ...(changed.length > 0 ? [`made durable: ${changed.join(' ')}`] : []),
        ...(locked ? [`now requires the password in ${config.redis.passwordFile}`] : []),
      ];
      return said.length > 0 ? said.join('; ') : null;
    } finally {
      client.disconnect();
    }
  },
  prepare: async (ctx) => {
    if (!existsSync(REDIS_SERVER)) {
      if (process.getuid?.() !== 0) {
        throw new ServiceStartError('redis', `${REDIS_SERVER} is missing`, { hint: 'install it: sudo apt-get install -y redis-server' });
      }
      ctx.onStep?.('installing redis-server with apt-get');
      await runLogged('redis', 'apt-get', ['install', '-y', '-q', 'redis-server'], ctx, { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
    }
    const { port } = redisHostPort(ctx.config.redis.url);
    const { dataDir } = servicePaths(ctx.config, 'redis');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const configFile = join(dataDir, 'redis-auth.conf');
    const secret = localPassword(ctx.config);
    writeFileSync(configFile, [`requirepass "${secret}"`, ...redisAclLines(ctx.config, secret), ''].join('\n'), { mode: 0o600 });
    return {
      command: REDIS_SERVER,
      // Redis rewrites its process title to "redis-server 127.0.0.1:<port>", hence the marker.
      args: [configFile, '--port', String(port), '--bind', '127.0.0.1', ...DURABILITY_ARGS, '--dir', dataDir, '--daemonize', 'no'],
      marker: `127.0.0.1:${port}`,
    };
  },
};
