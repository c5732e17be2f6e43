/**
 * Hygiene of the control API against the real Kafka and Redis: one token holds at most
 * DIAMOND_HTTP_STREAMS_PER_CLIENT open event streams (the next gets 429 with Retry-After,
 * another token is not affected, a closed stream frees its place), and an expired token is
 * refused like an unknown one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { loadConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { startControlApi } from '../../infra/orchestrator/control-api.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { config as baseConfig } from '../support/env.ts';

const options = isolatedOrchestratorOptions('st');

test('a token holds at most N event streams (429 past it, freed on close); an expired token is refused', async (t) => {
  const config = loadConfig({ ...process.env, DIAMOND_HTTP_STREAMS_PER_CLIENT: '2' });
  t.is(config.http.streamsPerClient, 2);
  const api = await startControlApi(config, { options, logger: createLogger({ logLevel: 'silent' }), endpoints: platformEndpoints(baseConfig) }, { port: 0, heartbeatMs: 200 });
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  await redis.connect();
  t.teardown(async () => {
    await api.close();
    const keys = await redis.keys(`${options.keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(options.keyPrefix.length)));
    redis.disconnect();
  });
  const tokens = new TokenStore(redis);
  const [first, second] = [await tokens.add('viewer', 'first'), await tokens.add('viewer', 'second')];

  const open = async (token: string): Promise<{ status: number; close: () => void; body: string; retryAfter: string | null }> => {
    const controller = new AbortController();
    const response = await fetch(`${api.url}/v1/events?follow=1`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
    const body = response.status === 200 ? '' : await response.text();
    return { status: response.status, close: () => controller.abort(), body, retryAfter: response.headers.get('retry-after') };
  };
  const a = await open(first);
  const b = await open(first);
  t.is(a.status, 200);
  t.is(b.status, 200);
  const refused = await open(first);
  t.is(refused.status, 429, refused.body);
  t.like(JSON.parse(refused.body) as object, { code: 'DIAMOND_STREAM_LIMIT' });
  t.is(refused.retryAfter, '5');
  const other = await open(second);
  t.is(other.status, 200, 'another token has its own streams');
  a.close();
  let again = await open(first);
  for (let i = 0; again.status === 429 && i < 50; i++) { // the server sees the close a moment later
    await sleep(100);
    again = await open(first);
  }
  t.is(again.status, 200, 'a closed stream frees its place');
  for (const stream of [b, other, again]) stream.close();

  const expiring = await tokens.add('viewer', 'short', { expiresAt: new Date(Date.now() + 1500) });
  const status = async (token: string): Promise<number> => (await fetch(`${api.url}/v1/status`, { headers: { authorization: `Bearer ${token}` } })).status;
  t.is(await status(expiring), 200);
  await sleep(2000);
  t.is(await status(expiring), 401, 'an expired token is refused');
  t.is(await tokens.verify(expiring), null);
});
