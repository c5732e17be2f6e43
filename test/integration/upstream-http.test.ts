/** The HTTP ingest API against the real Kafka, registry and Redis: each test its own topics, subject, keys and port. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import type { DiamondConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRegistry } from '../../shared/registry.ts';
import { readSchema, type CustomerRecord } from '../../shared/schemas.ts';
import { decodeRaw, type RejectedEnvelope } from '../../upstream/rejected.ts';
import { startUpstream, type UpstreamService } from '../../upstream/service.ts';
import { config, consumeAll, testKafka, uniqueName } from '../support/env.ts';

const logger = createLogger({ logLevel: (process.env['TEST_LOG_LEVEL'] ?? 'silent') as 'silent' });
const registry = createRegistry(config);

interface Harness {
  readonly upstream: UpstreamService;
  readonly apiKey: string;
  readonly topics: { normalized: string; rejected: string };
  readonly post: (body: string | Buffer, apiKey?: string) => Promise<Response>;
}

async function startHarness(overrides: Partial<DiamondConfig> = {}, options: { produceTimeoutMs?: number } = {}): Promise<Harness> {
  const topics = { normalized: uniqueName('test-normalized'), rejected: uniqueName('test-rejected') };
  const upstream = await startUpstream({ ...config, ...overrides }, {
    logger, port: 0, topics, subject: uniqueName('test-records-value'), redisKeyPrefix: `${uniqueName('test-upstream')}:`, ...options,
  });
  const { apiKey } = await upstream.sources.add('shop', { rename: { kunde: 'customer_id' } });
  const post = (body: string | Buffer, key = apiKey): Promise<Response> =>
    fetch(`${upstream.url}/v1/records`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body });
  return { upstream, apiKey, topics, post };
}

const good = (n: number): Record<string, unknown> => ({ customer_id: ` Cust-${n % 3} `, event_time: 1_761_998_400 + n, type: 'purchase', amount: '1.234,56', currency: 'EUR', n });

async function readRejected(topic: string, count: number): Promise<RejectedEnvelope[]> {
  const messages = await consumeAll(testKafka(), topic, count);
  return messages.map((message) => JSON.parse(message.value!.toString('utf8')) as RejectedEnvelope);
}

async function readNormalized(topic: string, count: number): Promise<(CustomerRecord & { key: string | null })[]> {
  const messages = await consumeAll(testKafka(), topic, count);
  return Promise.all(messages.map(async (message) => ({ ...((await registry.decode(message.value!)) as CustomerRecord), key: message.key })));
}

test('good records are written to records.normalized as Avro with key customer_id, after which the API answers 202', async (t) => {
  const { upstream, topics, post } = await startHarness();
  t.teardown(() => upstream.close());
  const records = Array.from({ length: 50 }, (_, n) => good(n));
  const response = await post(JSON.stringify(records));
  t.is(response.status, 202);
  t.deepEqual(await response.json(), { accepted: 50, rejected: 0, errors: [] });
  const written = await readNormalized(topics.normalized, 50);
  const first = written.find((record) => record.attributes['n'] === '0')!;
  t.like(first, { key: 'cust-0', customer_id: 'cust-0', source: 'shop', event_time: 1_761_998_400_000, type: 'purchase', amount: 1234.56, currency: 'EUR' });
  t.is(new Set(written.map((record) => record.record_id)).size, 50);
});

test('every bad input of the issue ends in records.rejected with its reasons and raw bytes; accepted + rejected = sent', async (t) => {
  const { upstream, topics, post } = await startHarness();
  t.teardown(() => upstream.close());
  const invalidUtf8 = Buffer.concat([Buffer.from('{"customer_id":"'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('","event_time":1761998400,"type":"x"}')]);
  const bad = [
    '{"customer_id": 42, "event_time": true, "type": ["x"], "amount": {}}', // wrong types
    '{"event_time": "2026-11-01T12:00:00Z", "type": "purchase"}', // missing customer
    '{"customer_id": "c", "event_time": "0000-01-01T00:00:00Z", "type": "purchase"}', // year 0
    '{"customer_id": "c", "event_time": "9999-12-31T23:59:59Z", "type": "purchase"}', // year 9999
    JSON.stringify({ ...good(1), note: 'x'.repeat(10 * 1024 * 1024) }), // a 10 MB field
    '"just a string"',
  ];
  const body = Buffer.concat([
    Buffer.from(`[${JSON.stringify(good(0))},${bad.join(',')},`), invalidUtf8, Buffer.from(`,${JSON.stringify(good(2))},{"customer_id": "trunc`),
  ]);
  const response = await post(body);
  t.is(response.status, 202);
  const answer = await response.json() as { accepted: number; rejected: number; errors: { index: number; reasons: { field: string; problem: string }[] }[] };
  const sent = 2 + bad.length + 2; // 2 good, the bad list, invalid UTF-8, the truncated tail
  t.is(answer.accepted, 2);
  t.is(answer.accepted + answer.rejected, sent);
  t.deepEqual(answer.errors.map((error) => error.index), [1, 2, 3, 4, 5, 6, 7, 9]);
  t.deepEqual(answer.errors[0]?.reasons.map((reason) => reason.field), ['event_time', 'type', 'amount']);
  t.regex(answer.errors[2]?.reasons[0]?.problem ?? '', /year 0;/);
  // The 10 MB field is refused by the per-record limit before any field is read (the per-field cap is in normalize.test.ts).
  t.regex(answer.errors[4]?.reasons[0]?.problem ?? '', /bytes; at most \d+ are accepted per record/);

  const envelopes = await readRejected(topics.rejected, answer.rejected);
  const byIndex = new Map(envelopes.map((envelope) => [envelope.location['index'], envelope]));
  t.is(byIndex.size, answer.rejected);
  for (const envelope of envelopes) {
    t.is(envelope.source, 'shop');
    t.is(envelope.via, 'http');
    t.true(envelope.reasons.length > 0);
    t.false(Number.isNaN(Date.parse(envelope.received_at)));
  }
  t.is(byIndex.get(1)?.raw, bad[0], 'raw input untouched');
  t.is(byIndex.get(5)?.raw.length, bad[4]!.length, 'the 10 MB record is kept whole');
  const utf8Envelope = byIndex.get(7)!;
  t.is(utf8Envelope.raw_encoding, 'base64');
  t.true(decodeRaw(utf8Envelope).equals(invalidUtf8), 'invalid UTF-8 kept byte for byte');
  t.is(byIndex.get(9)?.raw, '{"customer_id": "trunc');
  await readNormalized(topics.normalized, 2);
});

test('NDJSON and a body that is not JSON at all: each line accepted or rejected, none lost; an empty body is a 400', async (t) => {
  const { upstream, topics, post } = await startHarness();
  t.teardown(() => upstream.close());
  const ndjson = `${JSON.stringify(good(1))}\n{"kunde":"K9","ts":"2026-11-01T12:00:00+01:00","type":"login"}\nnot json\n`;
  const first = await post(ndjson);
  t.like(await first.json(), { accepted: 2, rejected: 1 });
  const garbage = await post('<html>\n<body>hello</body>\n</html>');
  t.like(await garbage.json(), { accepted: 0, rejected: 3 });
  const empty = await post('');
  t.is(empty.status, 400);
  t.regex(((await empty.json()) as { error: string }).error, /body is empty/);
  const records = await readNormalized(topics.normalized, 2);
  t.true(records.some((record) => record.customer_id === 'k9' && record.event_time === Date.UTC(2026, 10, 1, 11)));
  const rejected = await readRejected(topics.rejected, 4);
  t.deepEqual(rejected.map((envelope) => envelope.raw).sort(), ['</html>', '<body>hello</body>', '<html>', 'not json']);
});

test('resending the same records gives the same record ids (nothing is duplicated downstream)', async (t) => {
  const { upstream, topics, post } = await startHarness();
  t.teardown(() => upstream.close());
  const body = JSON.stringify([good(1), good(2), { ...good(3), record_id: 'R-3' }]);
  t.is((await post(body)).status, 202);
  t.is((await post(body)).status, 202);
  const records = await readNormalized(topics.normalized, 6);
  t.is(new Set(records.map((record) => record.record_id)).size, 3);
  t.true(records.some((record) => record.record_id === 'r-3'));
});

test('401 without a valid key, 413 past the body limit, 404/405 elsewhere; /healthz and /metrics answer', async (t) => {
  const { upstream, post } = await startHarness({ upstream: { ...config.upstream, maxBodyBytes: 1024 } });
  t.teardown(() => upstream.close());
  const noKey = await fetch(`${upstream.url}/v1/records`, { method: 'POST', body: '[]' });
  t.is(noKey.status, 401);
  t.is(noKey.headers.get('www-authenticate'), 'Bearer');
  t.is((await post('[]', 'dmd_shop_wrong')).status, 401);
  const tooLarge = await post(JSON.stringify([{ ...good(1), note: 'x'.repeat(2000) }]));
  t.is(tooLarge.status, 413);
  t.regex(((await tooLarge.json()) as { error: string }).error, /at most 1024/);
  t.is((await post(JSON.stringify([good(1)]))).status, 202, 'a small body still passes');
  t.is((await fetch(`${upstream.url}/v1/records`)).status, 405);
  t.is((await fetch(`${upstream.url}/nope`)).status, 404);
  const openapi = (await (await fetch(`${upstream.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
  t.is(openapi.openapi, '3.1.0');
  t.deepEqual(Object.keys(openapi.paths).sort(), ['/healthz', '/metrics', '/v1/records']);
  const health = await fetch(`${upstream.url}/healthz`);
  t.is(health.status, 200, await health.clone().text());
  const metrics = await (await fetch(`${upstream.url}/metrics`)).text();
  t.regex(metrics, /diamond_ingest_records_total\{source="shop",outcome="accepted"\} 1/);
  t.regex(metrics, /diamond_ingest_requests_total\{status="401"\} 2/);
});

test('Kafka unreachable: 503 with Retry-After and nothing acknowledged; /healthz says so', async (t) => {
  const { upstream, post } = await startHarness({ kafka: { ...config.kafka, brokers: ['127.0.0.1:1'] } }, { produceTimeoutMs: 2000 });
  t.teardown(() => upstream.close());
  const response = await post(JSON.stringify([good(1), { bad: true }]));
  t.is(response.status, 503);
  t.is(response.headers.get('retry-after'), '5');
  t.like(await response.json(), { code: 'DIAMOND_KAFKA_WRITE_FAILED', hint: 'retry later; check `npx diamond services status`' }); // retriable: the catalog says so (docs/ERRORS.md)
  t.is((await fetch(`${upstream.url}/healthz`)).status, 503);
});

test('a contract change that breaks BACKWARD compatibility is refused with a clear message', async (t) => {
  const subject = uniqueName('test-incompatible-value');
  const schema = readSchema('CustomerRecord');
  // An older writer without `type`: the current contract (type required, no default) cannot read its data.
  const older = { ...schema, fields: schema.fields.filter((field) => field.name !== 'type') };
  await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(older) }, { subject, compatibility: COMPATIBILITY.BACKWARD });
  const error = await t.throwsAsync(startUpstream(config, { logger, port: 0, subject, topics: { normalized: uniqueName('test-n'), rejected: uniqueName('test-r') } }));
  t.is((error as { code?: string }).code, 'DIAMOND_SCHEMA_INCOMPATIBLE');
  t.regex(error?.message ?? '', new RegExp(`${subject}.*not BACKWARD compatible`));
});

test("the README's sample record is accepted as the README says, and lands normalized", async (t) => {
  const readme = readFileSync(join(config.projectRoot, 'README.md'), 'utf8');
  const sample = /--data-binary '(\{[^']+\})'\n# → 202 (\{[^\n]+\})/.exec(readme);
  if (!sample) throw new Error('README.md has no sample record (curl … --data-binary \'{…}\' followed by "# → 202 {…}")');
  const h = await startHarness();
  t.teardown(() => h.upstream.close());
  const response = await h.post(sample[1]!);
  t.is(response.status, 202);
  t.deepEqual(await response.json(), JSON.parse(sample[2]!));
  const [landed] = await readNormalized(h.topics.normalized, 1);
  const sent = JSON.parse(sample[1]!) as { record_id: string; customer_id: string; amount: string };
  t.like(landed, { record_id: sent.record_id, customer_id: sent.customer_id, amount: 1234.56, currency: 'EUR', type: 'purchase' });
});
