import test from 'ava';
import { afterExit, STABLE_AFTER_MS, type SupervisedComponent } from './platform-supervisor.ts';

const running: SupervisedComponent = {
  name: 'upstream', state: 'running', pid: 42, since: 1_000, restarts: 3, consecutiveExits: 2, lastExit: null, nextStartAt: null,
};
const policy = { initialMs: 1000, maxMs: 60_000 };

test('an exit soon after a start backs off longer each time in a row', (t) => {
  const next = afterExit(running, 2_000, policy, () => 0.5);
  t.like(next, { state: 'backoff', pid: null, consecutiveExits: 3, restarts: 3, lastExit: { pid: 42, at: new Date(2_000).toISOString() } });
  t.is(next.nextStartAt, new Date(2_000 + 4_000).toISOString());
});

test('an exit after a stable run starts the backoff over', (t) => {
  const now = 1_000 + STABLE_AFTER_MS;
  const next = afterExit(running, now, policy, () => 0.5);
  t.is(next.consecutiveExits, 1);
  t.is(next.nextStartAt, new Date(now + 1_000).toISOString());
});
