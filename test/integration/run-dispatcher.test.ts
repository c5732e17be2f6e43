/**
 * RunDispatcher with a fake session pool (no Spark) and the real Redis run store: queue and
 * concurrency per function, start and run timeouts (the stuck session is replaced, the next run
 * works), DELETE of a queued and of a running run, and the events in order.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunEvent, RunEventFields } from '../../shared/messages.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import type { ResolvedFunction, FunctionSpec } from '../../infra/orchestrator/function-catalog.ts';
import { RunDispatcher, type RunRequest, type SessionAnswer, type SessionHandle, type SessionPool } from '../../infra/orchestrator/run-dispatcher.ts';
import { RunStore } from '../../infra/orchestrator/run-store.ts';
import { config, uniqueName } from '../support/env.ts';

const prefix = `${uniqueName('test-dispatcher')}:`;
const redis = createRedis(config, { keyPrefix: prefix });
test.after.always(async () => {
  const raw = createRedis(config);
  const keys = await raw.keys(`${prefix}*`);
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
  redis.disconnect();
});

/** How the fake session answers a run: after `ms`, or never (it ignores cancel too) when `stuck`. */
type Behaviour = { ms: number; answer?: SessionAnswer; stuck?: boolean };

class FakePool implements SessionPool {
  started = 0;
  replaced: string[] = [];
  sent: string[] = [];
  constructor(private readonly behave: (request: RunRequest) => Behaviour) {}
  async acquire(): Promise<SessionHandle> {
    const id = `s${++this.started}`;
    const cancels = new Map<string, () => void>();
    return {
      id,
      run: (request, signal) => new Promise<SessionAnswer>((resolve, reject) => {
        this.sent.push(request.run_id);
        const b = this.behave(request);
        const timer = b.stuck ? null : setTimeout(() => resolve(b.answer ?? { state: 'finished', result: { kind: 'value', value: request.params } }), b.ms);
        if (!b.stuck) cancels.set(request.run_id, () => { if (timer) clearTimeout(timer); resolve({ state: 'cancelled' }); });
        signal.addEventListener('abort', () => reject(new Error('aborted')));
      }),
      cancel: async (runId) => cancels.get(runId)?.(),
    };
  }
  release(): void {}
  replace(session: SessionHandle): void {
    this.replaced.push(session.id);
  }
}

const spec = (fields: Partial<FunctionSpec> = {}, limits: Partial<FunctionSpec['limits']> = {}): FunctionSpec => ({
  file: 'functions.py', description: null, params: {}, exclusive: false, concurrency: 1,
  limits: { start_timeout_ms: 5000, run_timeout_ms: 5000, max_rows: 10, ...limits }, ...fields,
});
const fnOf = (s: FunctionSpec, name = 'uc.fn'): ResolvedFunction => ({ name, usecase: 'uc', function: name.split('.')[1]!, folder: '/nowhere', version: 'v1', spec: s });

function dispatcher(pool: SessionPool, events: { event: RunEvent; fields: RunEventFields }[] = []): RunDispatcher {
  return new RunDispatcher({
    store: new RunStore(redis, 60_000), sessions: pool, killGraceMs: 300, queueLimit: 3, log: createLogger({ logLevel: 'silent' }),
    publish: async (event, fields) => void events.push({ event, fields }),
  });
}

test('runs beyond the concurrency wait in the queue; events queued → started → finished in order', async (t) => {
  const events: { event: RunEvent; fields: RunEventFields }[] = [];
  const pool = new FakePool(() => ({ ms: 150 }));
  const d = dispatcher(pool, events);
  const fn = fnOf(spec());
  const [a, b] = [await d.submit(fn, { n: 1 }, 'alice'), await d.submit(fn, { n: 2 }, 'bob')];
  await sleep(60);
  t.is((await d.get(a.id)).state, 'running');
  t.is((await d.get(b.id)).state, 'queued', 'concurrency 1: the second waits');
  const [doneA, doneB] = await Promise.all([d.waitFor(a.id, 5000), d.waitFor(b.id, 5000)]);
  t.deepEqual(doneA.result, { kind: 'value', value: { n: 1 } });
  t.deepEqual(doneB.result, { kind: 'value', value: { n: 2 } });
  t.true(Date.parse(doneB.startedAt!) >= Date.parse(doneA.endedAt!));
  t.deepEqual(events.filter((e) => e.fields.run === a.id).map((e) => e.event), ['queued', 'started', 'finished']);
  t.deepEqual(doneA.events.map((e) => e.event), ['queued', 'started', 'finished']);
  t.is(events[0]?.fields.by, 'alice');
});

test('a run over its timeout whose session does not free it is timed-out, the session replaced, and the next run works', async (t) => {
  let first = true;
  const pool = new FakePool(() => (first ? ((first = false), { ms: 0, stuck: true }) : { ms: 20 }));
  const d = dispatcher(pool);
  const fn = fnOf(spec({}, { run_timeout_ms: 200 }));
  const stuck = await d.submit(fn, {}, 'ci');
  const ended = await d.waitFor(stuck.id, 5000);
  t.is(ended.state, 'timed-out');
  t.is(ended.error?.code, 'run_timeout');
  t.deepEqual(pool.replaced, ['s1']);
  const next = await d.waitFor((await d.submit(fn, { ok: true }, 'ci')).id, 5000);
  t.is(next.state, 'finished');
});

test('a run whose session frees it on cancel at the timeout is timed-out without a kill', async (t) => {
  const pool = new FakePool(() => ({ ms: 10_000 }));
  const d = dispatcher(pool);
  const ended = await d.waitFor((await d.submit(fnOf(spec({}, { run_timeout_ms: 150 })), {}, 'ci')).id, 5000);
  t.is(ended.state, 'timed-out');
  t.deepEqual(pool.replaced, []);
});

test('a run that waits longer than its start timeout is timed-out and never sent', async (t) => {
  const pool = new FakePool(() => ({ ms: 600 }));
  const d = dispatcher(pool);
  const slow = await d.submit(fnOf(spec()), {}, 'ci');
  const waiting = await d.submit(fnOf(spec({}, { start_timeout_ms: 100 })), {}, 'ci');
  const ended = await d.waitFor(waiting.id, 5000);
  t.is(ended.state, 'timed-out');
  t.is(ended.error?.code, 'start_timeout');
  t.is((await d.waitFor(slow.id, 5000)).state, 'finished');
  t.false(pool.sent.includes(waiting.id));
});

test('DELETE: a queued run is removed (never sent), a running one cancelled; an ended one is 409', async (t) => {
  const pool = new FakePool(() => ({ ms: 2000 }));
  const d = dispatcher(pool);
  const fn = fnOf(spec());
  const running = await d.submit(fn, {}, 'ci');
  const queued = await d.submit(fn, {}, 'ci');
  await sleep(50);
  t.is((await d.cancel(queued.id, 'ops')).state, 'cancelled');
  await d.cancel(running.id, 'ops');
  t.is((await d.waitFor(running.id, 5000)).state, 'cancelled');
  t.false(pool.sent.includes(queued.id));
  const error = await t.throwsAsync(d.cancel(running.id, 'ops'));
  t.is((error as { status?: number }).status, 409);
  t.is(((await t.throwsAsync(d.get('nope'))) as { status?: number }).status, 404);
});

test('a failed run keeps the user\'s file and line; a full queue is 503', async (t) => {
  const pool = new FakePool(() => ({ ms: 100, answer: { state: 'failed', error: { code: 'user_code', file: 'functions.py', line: 7, function: 'boom', message: 'ZeroDivisionError: division by zero' } } }));
  const d = dispatcher(pool);
  const fn = fnOf(spec(), 'uc.boom');
  const failed = await d.waitFor((await d.submit(fn, {}, 'ci')).id, 5000);
  t.is(failed.state, 'failed');
  t.like(failed.error, { code: 'user_code', file: 'functions.py', line: 7 });
  const runs = [];
  for (let i = 0; i < 4; i++) runs.push(await d.submit(fn, {}, 'ci')); // 1 running + 3 waiting
  const full = await t.throwsAsync(d.submit(fn, {}, 'ci'));
  t.is((full as { status?: number }).status, 503);
  await Promise.all(runs.map((r) => d.waitFor(r.id, 5000)));
});
