/** Redis from Debian's redis-server package, one instance on loopback without persistence. */
import { existsSync, mkdirSync } from 'node:fs';
import { parseHostPort } from '../../shared/config.ts';
import { ServiceStartError } from '../../shared/errors.ts';
import { checkRedis } from '../../shared/redis.ts';
import { runLogged } from '../../shared/install-cache.ts';
import { servicePaths, type LocalService } from './service.ts';

const REDIS_SERVER = '/usr/bin/redis-server';

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
    mkdirSync(dataDir, { recursive: true });
    return {
      command: REDIS_SERVER,
      // Redis rewrites its process title to "redis-server 127.0.0.1:<port>", hence the marker.
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dataDir, '--daemonize', 'no'],
      marker: `127.0.0.1:${port}`,
    };
  },
};
