/**
 * One size limit per record: a 5 MiB record among 1,000 normal ones in one request is refused
 * with its reason (in the response and in records.rejected, raw bytes kept), and the normal ones
 * land.
 */
import { createHash } from 'node:crypto';
import test from 'ava';
import { createLogger } from '../../shared/logger.ts';
import { decodeRaw, type RejectedEnvelope } from '../../upstream/rejected.ts';
import { startUpstream } from '../../upstream/service.ts';
import { config, consumeAll, testKafka, uniqueName } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });

test('a 5 MiB record among 1,000 normal ones is refused with its reason; the normal ones land', async (t) => {
  const topics = { normalized: uniqueName('test-normalized'), rejected: uniqueName('test-rejected') };
  const upstream = await startUpstream(config, { logger, port: 0, topics, subject: uniqueName('test-records-value'), redisKeyPrefix: `${uniqueName('test-limit')}:` });
  t.teardown(() => upstream.close());
  const { apiKey } = await upstream.sources.add('shop');
  const normal = Array.from({ length: 1000 }, (_, n) => JSON.stringify({ customer_id: `c-${n % 7}`, event_time: 1_761_998_400 + n, type: 'purchase', amount: 10 + n }));
  // Under every per-field cap (80 attributes of 64 KiB), over the per-record limit.
  const attributes = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`a${i}`, 'x'.repeat(64 * 1024)]));
  const big = JSON.stringify({ customer_id: 'c-big', event_time: 1_761_998_400, type: 'purchase', ...attributes });
  t.true(big.length > 5 * 1024 * 1024);
  const lines = [...normal.slice(0, 500), big, ...normal.slice(500)];

  const response = await fetch(`${upstream.url}/v1/records`, {
    method: 'POST', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/x-ndjson' }, body: lines.join('\n'),
  });
  t.is(response.status, 202);
  const body = (await response.json()) as { accepted: number; rejected: number; errors: { index: number; reasons: { field: string; problem: string }[] }[] };
  t.is(body.accepted, 1000);
  t.is(body.rejected, 1);
  t.is(body.errors[0]?.index, 500);
  t.deepEqual(body.errors[0]?.reasons, [{ field: '(record)', problem: `is ${big.length} bytes; at most ${config.upstream.maxRecordBytes} are accepted per record (DIAMOND_RECORD_MAX_BYTES)` }]);

  const kafka = testKafka();
  t.is((await consumeAll(kafka, topics.normalized, 1000)).length, 1000);
  const [rejected] = await consumeAll(kafka, topics.rejected, 1);
  const envelope = JSON.parse(rejected!.value!.toString('utf8')) as RejectedEnvelope;
  t.is(envelope.reasons[0]?.field, '(record)');
  t.is(createHash('sha256').update(decodeRaw(envelope)).digest('hex'), createHash('sha256').update(big).digest('hex'), 'the raw record is kept untouched');

});
