/**
 * A wrong password against the real Redis: the error says the credentials were refused and
 * where they come from, and neither it, its causes, nor the HTTP error body an API would
 * answer carry the password.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import test from 'ava';
import { Redis } from 'ioredis';
import { loadConfig } from '../../shared/config.ts';
import { ServiceUnavailableError } from '../../shared/errors.ts';
import { errorAnswer } from '../../shared/http/error-body.ts';
import { checkRedis } from '../../shared/redis.ts';
import { createLogger } from '../../shared/logger.ts';
import { config as base, uniqueName } from '../support/env.ts';

/** Message, hint, code and every cause's message and stack: all a log line or a body could show. */
function everything(error: unknown): string {
  const parts: string[] = [];
  for (let current: unknown = error; current instanceof Error; current = current.cause) parts.push(current.message, current.stack ?? '', JSON.stringify(current));
  return parts.join('\n');
}

test('a refused Redis password is reported without the password, in the error and its HTTP body', async (t) => {
  const secret = `wrong-${uniqueName('pw')}`;
  const dir = mkdtempSync(join(tmpdir(), 'diamond-redis-'));
  writeFileSync(join(dir, 'password'), secret, { mode: 0o600 });
  for (const env of [
    { DIAMOND_REDIS_URL: base.redis.url, DIAMOND_REDIS_USERNAME: uniqueName('nobody'), DIAMOND_REDIS_PASSWORD_FILE: join(dir, 'password') },
    { DIAMOND_REDIS_URL: base.redis.url.replace('redis://', `redis://${uniqueName('nobody')}:${secret}@`) },
  ]) {
    const config = loadConfig(env);
    const error = await t.throwsAsync(checkRedis(config), { instanceOf: ServiceUnavailableError });
    t.regex(error?.hint ?? '', /refused our credentials/);
    t.regex(String((error?.cause as Error | undefined)?.message), /WRONGPASS/, 'the server really refused them');
    t.false(everything(error).includes(secret));
    t.false(JSON.stringify(errorAnswer(error, { bodyLimit: 1024, bodyLimitHint: '' }).body).includes(secret));
  }
});

test("ioredis' own AUTH error, logged whole as err, shows no password", async (t) => {
  const secret = `wrong-${uniqueName('pw')}`;
  const client = new Redis(base.redis.url, { username: uniqueName('nobody'), password: secret, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  const refused = new Promise<Error>((resolve) => client.on('error', resolve));
  await client.connect().catch(() => undefined);
  const error = await refused;
  client.disconnect();
  t.true(JSON.stringify(error).includes(secret), 'the raw error does carry it (command.args), which is why it is redacted');
  const lines: string[] = [];
  const log = createLogger({ logLevel: 'info' }, { destination: new Writable({ write: (chunk: Buffer, _e, done) => { lines.push(chunk.toString()); done(); } }) });
  log.error({ err: error }, 'redis failed');
  log.error({ err: new ServiceUnavailableError('Redis', base.redis.url, { cause: error }) }, 'redis unavailable');
  t.is(lines.length, 2);
  for (const line of lines) t.false(line.includes(secret), line);
});
