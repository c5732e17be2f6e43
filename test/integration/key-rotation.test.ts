/**
 * Revoke and rotate for source and customer keys, through the CLI, against running ingest and
 * feedback APIs on the real Redis: a revoked key is refused, a rotated one is replaced (old
 * refused, new accepted), the source keeps its mapping, and no key is ever printed twice.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test from 'ava';
import { startDownstream } from '../../downstream/service.ts';
import { createLogger } from '../../shared/logger.ts';
import { startUpstream } from '../../upstream/index.ts';
import { config, uniqueKeyspace, uniqueName } from '../support/env.ts';
import { migrateKeyspace } from '../../downstream/migrations.ts';
import { createCassandra } from '../../shared/cassandra.ts';

const run = promisify(execFile);
const logger = createLogger({ logLevel: 'silent' });
const diamond = async (...args: string[]): Promise<unknown> => {
  const { stdout } = await run('node', ['infra/cli/bin.js', ...args, '--json'], { env: process.env });
  return JSON.parse(stdout) as unknown;
};

test('a source key revoked or rotated with the CLI stops working at the ingest API; the mapping is kept', async (t) => {
  const upstream = await startUpstream(config, {
    logger, port: 0, topics: { normalized: uniqueName('test-normalized'), rejected: uniqueName('test-rejected') }, subject: uniqueName('test-records-value'),
  });
  t.teardown(() => upstream.close());
  const name = uniqueName('keys').toLowerCase();
  const { apiKey: first } = await upstream.sources.add(name, { rename: { kunde: 'customer_id' } });
  t.teardown(() => diamond('source', 'revoke', name).catch(() => undefined));
  const post = (key: string): Promise<Response> => fetch(`${upstream.url}/v1/records`, {
    method: 'POST', headers: { Authorization: `Bearer ${key}` }, body: JSON.stringify({ kunde: 'c-1', event_time: 1_761_998_400, type: 'purchase' }),
  });
  t.is((await post(first)).status, 202);

  const rotated = (await diamond('source', 'rotate', name)) as { source: string; apiKey: string };
  t.is(rotated.source, name);
  t.not(rotated.apiKey, first);
  await sleep(5_500); // the ingest API caches a key's source for 5 s
  t.is((await post(first)).status, 401, 'the old key is refused after a rotation');
  const accepted = await post(rotated.apiKey);
  t.is(accepted.status, 202, 'the new key works, with the mapping kept (kunde → customer_id)');
  t.like(await accepted.json(), { accepted: 1, rejected: 0 });

  t.deepEqual(await diamond('source', 'revoke', name), { source: name, revoked: true });
  await sleep(5_500);
  t.is((await post(rotated.apiKey)).status, 401, 'a revoked key is refused');
});

test('a customer key rotated or revoked with the CLI is refused by the feedback API at once', async (t) => {
  const keyspace = uniqueKeyspace('test_keys');
  const cassandra = createCassandra(config);
  await cassandra.connect();
  await migrateKeyspace(cassandra, keyspace);
  t.teardown(async () => {
    await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await cassandra.shutdown();
  });
  const running = await startDownstream(config, { logger, parts: ['api'], port: 0, keyspace });
  t.teardown(() => running.stop());
  const customer = uniqueName('cust');
  t.teardown(() => diamond('customer', 'revoke', customer).catch(() => undefined));
  const get = async (key: string): Promise<number> => (await fetch(`${running.url!}/v1/feedback`, { headers: { authorization: `Bearer ${key}` } })).status;

  const { stdout } = await run('node', ['infra/cli/bin.js', 'customer', 'add', customer], { env: process.env });
  const first = stdout.trim();
  t.is(await get(first), 200);
  const rotated = (await diamond('customer', 'rotate', customer)) as { apiKey: string; revoked: number };
  t.is(rotated.revoked, 1);
  t.is(await get(first), 401, 'the old key is refused after a rotation');
  t.is(await get(rotated.apiKey), 200);
  t.deepEqual(await diamond('customer', 'revoke', customer), { customer, revoked: 1 });
  t.is(await get(rotated.apiKey), 401, 'a revoked key is refused');
});
