import test from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { AlertTransition } from './alert-rules.ts';
import { MessageContractError, parseAlertWebhook, readMessageSchema } from '../../shared/messages.ts';
import { safeTarget, WebhookNotifier, webhookPayload, type WebhookPayload } from './webhook-notifier.ts';

const transition: AlertTransition = {
  kind: 'firing', rule: 'lag', severity: 'warning', job: 'uc.dq.A', usecase: 'dq', variant: 'A', value: 250, threshold: 100, unit: 'records',
  summary: 'uc.dq.A: lag 250 records (threshold 100)', at: Date.UTC(2026, 10, 1, 10), firedAt: Date.UTC(2026, 10, 1, 10),
};

/** A logger whose lines the test reads. */
function capturedLogger(): { log: pino.Logger; lines: () => string } {
  let text = '';
  const sink = new Writable({ write(chunk: Buffer, _encoding, done) { text += chunk.toString(); done(); } });
  return { log: pino({ level: 'debug' }, sink), lines: () => text };
}

async function receiver(answer: (attempt: number, response: ServerResponse) => void): Promise<{ url: (path: string) => string; bodies: unknown[]; authorizations: (string | undefined)[]; close: () => Promise<void> }> {
  const bodies: unknown[] = [];
  const authorizations: (string | undefined)[] = [];
  let attempt = 0;
  const server = createServer((request: IncomingMessage, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      attempt += 1;
      bodies.push(JSON.parse(text));
      authorizations.push(request.headers.authorization);
      answer(attempt, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: (path) => `http://127.0.0.1:${port}${path}`, bodies, authorizations, close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }) };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('the payload names the alert, job, state, value, threshold and times', (t) => {
  t.deepEqual(webhookPayload({ ...transition, kind: 'resolved', value: null, at: Date.UTC(2026, 10, 1, 11) }), {
    alert: 'lag', state: 'resolved', severity: 'warning', job: 'uc.dq.A', usecase: 'dq', variant: 'A', value: null, threshold: 100, unit: 'records',
    summary: 'uc.dq.A: lag 250 records (threshold 100)', at: '2026-11-01T11:00:00.000Z', firedAt: '2026-11-01T10:00:00.000Z',
  });
});

test('the payload is checked against its contract before it is sent; a receiver can check it too', (t) => {
  const schema = readMessageSchema('alertWebhook');
  // The TS type and the schema name the same fields, all required (receivers rely on each).
  const fields = { alert: true, state: true, severity: true, job: true, usecase: true, variant: true, value: true, threshold: true, unit: true, summary: true, at: true, firedAt: true } as const satisfies Record<keyof WebhookPayload, true>;
  t.deepEqual(Object.keys(schema.properties).sort(), Object.keys(fields).sort());
  t.deepEqual([...schema.required].sort(), Object.keys(fields).sort());
  t.true(parseAlertWebhook(JSON.stringify(webhookPayload(transition))).ok);
  t.throws(() => webhookPayload({ ...transition, summary: '' }), { instanceOf: MessageContractError, message: /summary/ });
  const wrong = parseAlertWebhook({ ...webhookPayload(transition), state: 'pending' });
  t.deepEqual(wrong.ok ? null : wrong.field, 'state');
});

test('a refused delivery is retried with backoff until the webhook accepts it; notify returns at once', async (t) => {
  const hook = await receiver((attempt, response) => response.writeHead(attempt < 3 ? 500 : 200).end());
  t.teardown(() => hook.close());
  const { log, lines } = capturedLogger();
  const notifier = new WebhookNotifier([hook.url('/alerts/s3cret-path?token=abc')], { timeoutMs: 2000, retries: 3, backoffMs: 20, backoffMaxMs: 50 }, log);
  notifier.notify(transition);
  t.is(hook.bodies.length, 0, 'nothing was awaited');
  await until(() => lines().includes('alert delivered to webhook'));
  t.is(hook.bodies.length, 3);
  t.like(hook.bodies[2], { alert: 'lag', state: 'firing', job: 'uc.dq.A', value: 250, threshold: 100 });
  // Each body the receiver got keeps the written contract (shared/schemas/alert-webhook.schema.json).
  for (const body of hook.bodies) {
    const parsed = parseAlertWebhook(body);
    t.true(parsed.ok, parsed.ok ? '' : `${parsed.field} ${parsed.problem}`);
  }
  t.regex(lines(), /answered 500/);
  t.notRegex(lines(), /s3cret-path|token=abc/, 'the path and query never reach the log');
  await notifier.close();
});

test('an unreachable or hanging webhook is given up after its retries, with a warning that names no secret', async (t) => {
  const hang = await receiver(() => undefined); // never answers
  t.teardown(() => hang.close());
  const { log, lines } = capturedLogger();
  const closed = await receiver(() => undefined);
  const refusing = closed.url('/hook?token=abc');
  await closed.close(); // nothing listens there any more
  const notifier = new WebhookNotifier([hang.url('/x?token=abc'), refusing], { timeoutMs: 100, retries: 1, backoffMs: 10, backoffMaxMs: 10 }, log);
  notifier.notify(transition);
  await until(() => (lines().match(/dropped/g) ?? []).length === 2);
  t.regex(lines(), /no answer within 100 ms/);
  t.regex(lines(), /request failed \(ECONNREFUSED\)/);
  t.notRegex(lines(), /token=abc/);
  const dropped = lines().split('\n').filter((line) => line.includes('dropped')).map((line) => JSON.parse(line) as { attempts: number });
  t.deepEqual(dropped.map((line) => line.attempts), [2, 2], 'one try and one retry each');
  await notifier.close();
});

test('credentials in a webhook URL are sent as Basic authorization and never logged', async (t) => {
  const hook = await receiver((_attempt, response) => response.writeHead(204).end());
  t.teardown(() => hook.close());
  const server = hook.url('/h');
  const { log, lines } = capturedLogger();
  const notifier = new WebhookNotifier([server.replace('http://', 'http://alert%20user:p%40ss@')], { timeoutMs: 1000, retries: 0 }, log);
  notifier.notify(transition);
  await until(() => lines().includes('alert delivered to webhook'));
  t.is(hook.authorizations[0], `Basic ${Buffer.from('alert user:p@ss').toString('base64')}`);
  t.notRegex(lines(), /alert%20user|p%40ss|p@ss/);
  await notifier.close();
});

test('close stops retrying', async (t) => {
  const hook = await receiver((_attempt, response) => response.writeHead(503).end());
  t.teardown(() => hook.close());
  const { log } = capturedLogger();
  const notifier = new WebhookNotifier([hook.url('/h')], { timeoutMs: 1000, retries: 5, backoffMs: 10_000, backoffMaxMs: 10_000 }, log);
  notifier.notify(transition);
  await until(() => hook.bodies.length === 1);
  await notifier.close(50);
  notifier.notify(transition);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(hook.bodies.length, 1, 'no retry after close, nothing new accepted');
});

test('a target is logged by its origin only', (t) => {
  t.is(safeTarget('https://user:pw@hooks.example.com:8443/services/T0/B0/XYZ?token=1'), 'https://hooks.example.com:8443');
  t.is(safeTarget('not a url'), '(invalid URL)');
});
