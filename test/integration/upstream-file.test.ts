/** The bulk file loader against the real Kafka, registry and Redis. */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../shared/logger.ts';
import { createRegistry } from '../../shared/registry.ts';
import type { CustomerRecord } from '../../shared/schemas.ts';
import { loadFile, type LoadProgress } from '../../upstream/file-loader.ts';
import { decodeRaw, type RejectedEnvelope } from '../../upstream/rejected.ts';
import { openUpstream, type UpstreamCore } from '../../upstream/service.ts';
import { config, consumeAll, testKafka, uniqueName } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });
const registry = createRegistry(config);
const dir = mkdtempSync(join(tmpdir(), 'diamond-upstream-file-'));

async function open(): Promise<{ core: UpstreamCore; topics: { normalized: string; rejected: string } }> {
  const topics = { normalized: uniqueName('test-normalized'), rejected: uniqueName('test-rejected') };
  const core = await openUpstream(config, { logger, topics, subject: uniqueName('test-records-value'), redisKeyPrefix: `${uniqueName('test-upstream')}:` });
  return { core, topics };
}

test('a CSV file: good rows normalized, bad rows (wrong column count, invalid UTF-8) rejected with their line; rerunning writes the same ids', async (t) => {
  const { core, topics } = await open();
  t.teardown(() => core.close());
  await core.sources.add('erp', { rename: { kunde: 'customer_id', betrag: 'amount' }, defaults: { type: 'purchase' }, decimal: 'comma' });
  const source = await core.sources.get('erp');
  const file = join(dir, `${uniqueName('orders')}.csv`);
  writeFileSync(file, Buffer.concat([
    Buffer.from('kunde,ts,betrag,currency,note\r\n'),
    Buffer.from('K1,2026-11-01T12:00:00Z,"1.234,56",EUR,plain\r\n'),
    Buffer.from('K2,1761998400,12,EUR,"a note\nover two lines"\n'),
    Buffer.from('K3,1761998400,12,EUR\n'), // one column short
    Buffer.concat([Buffer.from('K4,1761998400,1,EUR,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]),
    Buffer.from('\n'),
    Buffer.from(',9999-01-01,abc,EUR,bad values'), // no trailing newline
  ]));
  const seen: LoadProgress[] = [];
  const summary = await loadFile(file, { source, pipeline: core.pipeline, logger, batchSize: 2, onProgress: (progress) => seen.push(progress) });
  t.like(summary, { records: 5, accepted: 2, rejected: 3 });
  t.is(summary.bytesRead, summary.totalBytes);
  t.true(seen.length >= 3, 'progress reported per batch');

  const envelopes = (await consumeAll(testKafka(), topics.rejected, 3)).map((message) => JSON.parse(message.value!.toString()) as RejectedEnvelope);
  const byLine = new Map(envelopes.map((envelope) => [envelope.location['line'], envelope]));
  t.deepEqual(byLine.get(5)?.reasons, [{ field: '(row)', problem: 'has 4 columns; the header has 5' }]);
  t.is(byLine.get(5)?.raw, 'K3,1761998400,12,EUR');
  t.is(byLine.get(6)?.raw_encoding, 'base64');
  t.true(decodeRaw(byLine.get(6)!).equals(Buffer.concat([Buffer.from('K4,1761998400,1,EUR,'), Buffer.from([0xff, 0xfe])])));
  t.deepEqual(byLine.get(8)?.reasons.map((reason) => reason.field), ['customer_id', 'event_time', 'amount']);
  t.true(envelopes.every((envelope) => envelope.via === 'file' && envelope.source === 'erp'));

  await loadFile(file, { source, pipeline: core.pipeline, logger });
  const records = await Promise.all((await consumeAll(testKafka(), topics.normalized, 4)).map(async (message) => (await registry.decode(message.value!)) as CustomerRecord));
  t.is(new Set(records.map((record) => record.record_id)).size, 2, 'the rerun wrote the same two ids again');
  const k1 = records.find((record) => record.customer_id === 'k1');
  t.like(k1, { amount: 1234.56, currency: 'EUR', type: 'purchase', event_time: Date.UTC(2026, 10, 1, 12) });
  t.is(records.find((record) => record.customer_id === 'k2')?.attributes['note'], 'a note\nover two lines');
});

test('a JSONL file: truncated and non-JSON lines are rejected, the rest accepted; accepted + rejected = lines', async (t) => {
  const { core, topics } = await open();
  t.teardown(() => core.close());
  await core.sources.add('app');
  const source = await core.sources.get('app');
  const file = join(dir, `${uniqueName('events')}.jsonl`);
  const good = (n: number): string => JSON.stringify({ cust_id: `c${n}`, ts: 1_761_998_400_000 + n, type: 'login' });
  writeFileSync(file, [good(1), '{"cust_id": "c2", "ts": 17', 'not json at all', good(3), ''].join('\n'));
  const summary = await loadFile(file, { source, pipeline: core.pipeline, logger });
  t.like(summary, { records: 4, accepted: 2, rejected: 2 });
  const envelopes = (await consumeAll(testKafka(), topics.rejected, 2)).map((message) => JSON.parse(message.value!.toString()) as RejectedEnvelope);
  t.deepEqual(envelopes.map((envelope) => envelope.location['line']).sort(), [2, 3]);
});

test('an unknown extension or an unknown source is a clear error', async (t) => {
  const { core } = await open();
  t.teardown(() => core.close());
  const error = await t.throwsAsync(core.sources.get('nobody'));
  t.is((error as { code?: string }).code, 'DIAMOND_SOURCE_UNKNOWN');
  await core.sources.add('x');
  const file = join(dir, 'data.xml');
  writeFileSync(file, '<x/>');
  const formatError = await t.throwsAsync(loadFile(file, { source: await core.sources.get('x'), pipeline: core.pipeline, logger }));
  t.regex(formatError?.message ?? '', /cannot tell the format/);
});
