/**
 * Kafka stopped mid-ingest: clients get 503 with Retry-After, nothing that was acknowledged
 * (202) is lost, and ingestion resumes when Kafka is back. Restarts the broker of the services
 * it runs against (your own, see OPERATING.md), so it runs alone (ava.durability.config.js).
 *
 * Duplicates are checked, honestly: a refused (503) or timed-out request may still have been
 * written (Kafka acknowledged it late) and the client sends it again, so its records may land
 * once per send; every other record lands exactly once.
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRegistry } from '../../shared/registry.ts';
import type { CustomerRecord } from '../../shared/schemas.ts';
import { startUpstream } from '../../upstream/service.ts';
import { config, consumeUntil, testKafka, uniqueName } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });

test('ingest answers 503 while Kafka is down, loses nothing it acknowledged, and resumes', async (t) => {
  const topics = { normalized: uniqueName('test-restart-normalized'), rejected: uniqueName('test-restart-rejected') };
  const upstream = await startUpstream(config, {
    logger, port: 0, topics, subject: uniqueName('test-restart-records-value'), redisKeyPrefix: `${uniqueName('test-restart')}:`, produceTimeoutMs: 2_000,
  });
  t.teardown(() => upstream.close());
  const { apiKey } = await upstream.sources.add('shop');

  const acknowledged = new Set<number>();
  /** n → times its batch was refused or timed out and sent again. */
  const resent = new Map<number, number>();
  const statuses: number[] = [];
  let retryAfterSeen = false;
  let next = 0;
  let sending = true;
  const post = async (batch: number[]): Promise<number> => {
    const body = batch.map((n) => JSON.stringify({ customer_id: `c${n % 7}`, event_time: 1_761_998_400_000 + n, type: 'purchase', amount: 1, currency: 'EUR', n })).join('\n');
    try {
      const response = await fetch(`${upstream.url}/v1/records`, { method: 'POST', headers: { Authorization: `Bearer ${apiKey}` }, body, signal: AbortSignal.timeout(15_000) });
      if (response.status === 503 && response.headers.get('retry-after')) retryAfterSeen = true;
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  };
  // A client that sends batches of 20 and retries a refused batch, as Retry-After asks.
  const client = (async () => {
    let pending: number[] = [];
    while (sending) {
      if (pending.length === 0) pending = Array.from({ length: 20 }, () => next++);
      const status = await post(pending);
      statuses.push(status);
      if (status === 202) {
        for (const n of pending) acknowledged.add(n);
        pending = [];
      } else {
        for (const n of pending) resent.set(n, (resent.get(n) ?? 0) + 1);
      }
      await sleep(status === 202 ? 100 : 1_000);
    }
  })();

  await sleep(3_000);
  const before = acknowledged.size;
  t.true(before > 0, 'records were accepted before the outage');
  t.true(sending, 'the client was still sending when the broker stopped');
  const [down] = await servicesDown(config, { only: ['kafka'] });
  t.true(down?.stopped, 'the broker this checkout started was stopped');
  await sleep(6_000);
  const duringOutage = statuses.length;
  await servicesUp(config, logger, { only: ['kafka'] });
  const acknowledgedAtRestart = acknowledged.size;
  // A time window: ingestion must resume within 60 s of the broker being back.
  for (let i = 0; i < 60 && acknowledged.size < acknowledgedAtRestart + 100; i++) await sleep(1_000);
  sending = false;
  await client;

  const refusedDuringOutage = statuses.slice(0, duringOutage).filter((status) => status === 503).length;
  t.log(`${refusedDuringOutage} requests refused with 503 during the outage; ${resent.size} records in refused or timed-out batches`);
  t.true(refusedDuringOutage > 0, `ingest refused requests while Kafka was down (statuses: ${JSON.stringify(statuses.slice(0, duringOutage).slice(-20))})`);
  t.true(retryAfterSeen, '503 carries Retry-After');
  t.true(acknowledged.size >= acknowledgedAtRestart + 100, `ingestion resumed within 60 s of Kafka coming back (${acknowledged.size - acknowledgedAtRestart} of 100 records acknowledged since)`);

  // Every acknowledged record is in records.normalized (a 503'd batch may also have landed: duplicates carry the same record_id).
  const registry = createRegistry(config);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const total = (await admin.fetchTopicOffsets(topics.normalized)).reduce((sum, p) => sum + Number(p.high), 0);
  await admin.disconnect();
  const messages = await consumeUntil(kafka, topics.normalized, (all) => all.length >= total, 120_000);
  const seen = new Map<number, number>();
  for (const message of messages) {
    const n = Number(((await registry.decode(message.value!)) as CustomerRecord).attributes['n']);
    seen.set(n, (seen.get(n) ?? 0) + 1);
  }
  const missing = [...acknowledged].filter((n) => !seen.has(n));
  t.deepEqual(missing, [], 'no acknowledged record is missing');
  t.deepEqual([...seen.keys()].filter((n) => !(n >= 0 && n < next)), [], 'no record that was not sent');
  // Each copy beyond the first needs a send beyond the first.
  const tooMany = [...seen].filter(([n, copies]) => copies > 1 + (resent.get(n) ?? 0));
  t.deepEqual(tooMany.slice(0, 10), [], 'a record lands more than once only when its request was refused or timed out and sent again, at most once per send');
  t.log(`${[...seen.values()].filter((copies) => copies > 1).length} records landed more than once, all from resent batches`);
});
