/**
 * The customer feedback API on the real stack (writer → Cassandra → API): keys, 401s,
 * pagination, and attempts to reach another customer's rows through ids, cursors and filters.
 */
import test from 'ava';
import { CustomerKeys } from '../../downstream/customer-keys.ts';
import { startDownstream } from '../../downstream/service.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { config } from '../support/env.ts';
import { downstreamFixture, feedback, type DownstreamFixture } from '../support/downstream.ts';

interface Page { items: Feedback[]; next_cursor: string | null }

async function setup(t: Parameters<typeof downstreamFixture>[0], name: string): Promise<{ f: DownstreamFixture; url: string; keyA: string; keyB: string; rowsA: Feedback[] }> {
  const f = await downstreamFixture(t, name);
  const running = await startDownstream(config, {
    logger: f.logger, parts: ['feedback-writer', 'api'], port: 0, keyspace: f.keyspace, redisKeyPrefix: f.keyPrefix,
    feedbackTopic: f.topic, rejectedFeedbackTopic: f.rejectedTopic, feedbackGroup: f.groupId,
  });
  t.teardown(() => running.stop());
  const keys = new CustomerKeys(f.redis);
  const [keyA, keyB] = [await keys.add('acme'), await keys.add('globex')];
  const rowsA = Array.from({ length: 25 }, (_, i) => feedback({
    customer_id: 'acme', usecase: i % 2 === 0 ? 'spending' : 'fraud', feedback_id: `a-${String(i).padStart(2, '0')}`,
    event_time: Date.now() - (i < 12 ? 2 : 0) * 24 * 3600 * 1000 - (25 - i) * 1000,
  }));
  const rowsB = Array.from({ length: 10 }, (_, i) => feedback({ customer_id: 'globex', feedback_id: `b-${i}`, event_time: Date.now() - i * 1000 }));
  await f.produce([...rowsA, ...rowsB]);
  await f.waitForCommitted();
  return { f, url: running.url!, keyA, keyB, rowsA };
}

const get = async (url: string, key?: string): Promise<{ status: number; body: unknown }> => {
  const response = await fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const text = await response.text();
  return { status: response.status, body: text.startsWith('{') ? JSON.parse(text) : text };
};

async function readAll(url: string, key: string, query: string): Promise<Feedback[]> {
  const items: Feedback[] = [];
  let cursor: string | null = null;
  do {
    const { status, body } = await get(`${url}/v1/feedback?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, key);
    if (status !== 200) throw new Error(`status ${status}: ${JSON.stringify(body)}`);
    const page = body as Page;
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

test('keys, 401s, health and metrics', async (t) => {
  const { url, keyA } = await setup(t, 'api-auth');
  t.is((await get(`${url}/healthz`)).status, 200);
  t.is((await get(`${url}/v1/feedback`)).status, 401);
  t.is((await get(`${url}/v1/feedback`, 'dmd_not-a-real-key')).status, 401);
  t.is((await get(`${url}/v1/feedback`, keyA.slice(0, -1))).status, 401);
  const basic = await fetch(`${url}/v1/feedback`, { headers: { authorization: `Basic ${keyA}` } });
  t.is(basic.status, 401);
  t.is(basic.headers.get('www-authenticate'), 'Bearer');
  t.is((await get(`${url}/v1/feedback/stream`)).status, 401);
  t.is((await get(`${url}/v1/feedback`, keyA)).status, 200);
  t.is((await get(`${url}/v1/feedback?limit=0`, keyA)).status, 400);
  // The key is checked before routing: an unknown path is 401 without a key, 404 with one.
  t.is((await get(`${url}/v1/nothing`)).status, 401);
  t.is((await get(`${url}/v1/nothing`, keyA)).status, 404);
  t.is((await fetch(`${url}/v1/feedback`, { method: 'POST', headers: { authorization: `Bearer ${keyA}` } })).status, 405);
  t.is((await get(`${url}/v1/ab/spending`, keyA)).status, 403, 'a customer key is not an operator token');
  const openapi = (await get(`${url}/openapi.json`)).body as { openapi: string; paths: Record<string, unknown> };
  t.is(openapi.openapi, '3.1.0');
  t.truthy(openapi.paths['/v1/feedback'] && openapi.paths['/v1/feedback/stream'] && openapi.paths['/v1/ab/{usecase}']);
  const metrics = await get(`${url}/metrics`);
  t.regex(String(metrics.body), /diamond_feedback_api_requests_total\{status="401"\} [1-9]/);
  t.regex(String(metrics.body), /diamond_feedback_rows_written_total/);
});

test("a key pages through its own customer's feedback only, in time order, with filters", async (t) => {
  const { url, keyA, keyB, rowsA } = await setup(t, 'api-pages');
  const all = await readAll(url, keyA, 'limit=7');
  t.deepEqual(all.map((r) => r.feedback_id), [...rowsA].sort((a, b) => a.event_time - b.event_time).map((r) => r.feedback_id));
  t.true(all.every((r) => r.customer_id === 'acme'));
  t.deepEqual(all.find((r) => r.feedback_id === 'a-03')?.details, rowsA[3]!.details);

  const fraud = await readAll(url, keyA, 'limit=4&usecase=fraud');
  t.deepEqual(fraud.map((r) => r.feedback_id).sort(), rowsA.filter((r) => r.usecase === 'fraud').map((r) => r.feedback_id).sort());
  const recent = await readAll(url, keyA, `since=${Date.now() - 24 * 3600 * 1000}`);
  t.deepEqual(recent.map((r) => r.feedback_id).sort(), rowsA.slice(12).map((r) => r.feedback_id).sort());

  const b = await readAll(url, keyB, 'limit=3');
  t.is(b.length, 10);
  t.true(b.every((r) => r.customer_id === 'globex'));
});

test("no id, cursor or filter lets customer A read customer B's rows", async (t) => {
  const { url, keyA, keyB } = await setup(t, 'api-isolation');
  const onlyAcme = (body: unknown): boolean => (body as Page).items.every((r) => r.customer_id === 'acme');
  // Ids and extra parameters naming the other customer are ignored: the key decides.
  for (const query of ['customer_id=globex', 'customer=globex', 'usecase=spending&customer_id=globex', "usecase=spending' OR customer_id='globex", 'usecase=%00globex']) {
    const { status, body } = await get(`${url}/v1/feedback?${query}`, keyA);
    t.true(status === 200 && onlyAcme(body), query);
  }
  // B's cursor with A's key, a tampered cursor, a forged one, a cursor with swapped filters.
  const pageB = (await get(`${url}/v1/feedback?limit=2`, keyB)).body as Page;
  t.truthy(pageB.next_cursor);
  t.is((await get(`${url}/v1/feedback?cursor=${encodeURIComponent(pageB.next_cursor!)}`, keyA)).status, 400);
  const [body, signature] = pageB.next_cursor!.split('.');
  const forgedBody = Buffer.from(Buffer.from(body!, 'base64url').toString().replace('globex', 'acme')).toString('base64url');
  t.is((await get(`${url}/v1/feedback?cursor=${forgedBody}.${signature}`, keyA)).status, 400);
  const asAcme = Buffer.from(JSON.stringify(['acme', 0, null, 0, ''])).toString('base64url');
  t.is((await get(`${url}/v1/feedback?cursor=${asAcme}.${signature}`, keyA)).status, 400);
  t.is((await get(`${url}/v1/feedback?cursor=garbage`, keyA)).status, 400);
  const pageA = (await get(`${url}/v1/feedback?limit=2`, keyA)).body as Page;
  t.is((await get(`${url}/v1/feedback?usecase=fraud&cursor=${encodeURIComponent(pageA.next_cursor!)}`, keyA)).status, 400);
  t.is((await get(`${url}/v1/feedback?cursor=${encodeURIComponent(pageA.next_cursor!)}`, keyA)).status, 200);
});

test('the stream pushes new feedback of that customer only, as server-sent events', async (t) => {
  const { f, url, keyA } = await setup(t, 'api-stream');
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const response = await fetch(`${url}/v1/feedback/stream`, { headers: { authorization: `Bearer ${keyA}` }, signal: controller.signal });
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = response.body!.getReader();
  await reader.read(); // ': connected'
  await f.produce([feedback({ customer_id: 'globex', feedback_id: 'live-b1' }), feedback({ customer_id: 'acme', feedback_id: 'live-a' }), feedback({ customer_id: 'globex', feedback_id: 'live-b2' })]);
  // Everything above written (and published) before the marker is produced: reading up to the
  // marker reads everything the stream would ever push of them, not "what came first".
  await f.waitForCommitted();
  await f.produce([feedback({ customer_id: 'acme', feedback_id: 'live-end' })]);
  let text = '';
  const timer = setTimeout(() => controller.abort(new Error('the stream pushed no live-end marker in 30 s')), 30_000);
  try {
    while (!text.includes('id: live-end\n') || !text.slice(text.indexOf('id: live-end\n')).includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
  } finally {
    clearTimeout(timer);
  }
  t.regex(text, /id: live-a\nevent: feedback\ndata: \{/);
  t.deepEqual([...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]), ['live-a', 'live-end'], 'up to the marker: that customer\'s feedback, in order, nothing of the other customer');
  t.notRegex(text, /live-b|globex/);
});
