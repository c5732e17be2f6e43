import test from 'ava';
import { pino } from 'pino';
import { backoffDelayMs } from './backoff.ts';
import { DependencyWaitTimeoutError, startWhenReady, waitForDependencies, type Dependency } from './dependency-wait.ts';
import { ConfigError, ServiceUnavailableError } from './errors.ts';

const quick = { initialMs: 1, maxMs: 5 };

function silentLogger(lines: string[]) {
  return pino({ level: 'info' }, { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) });
}

/** A probe that answers after `failures` refusals (a stand-in for a server's probe, not for the server). */
function flaky(failures: number, error: () => Error = () => new ServiceUnavailableError('Redis', 'redis://127.0.0.1:1')): Dependency & { calls: number } {
  const dependency = {
    name: 'Redis', address: 'redis://127.0.0.1:1', calls: 0,
    probe: async () => {
      dependency.calls += 1;
      if (dependency.calls <= failures) throw error();
    },
  };
  return dependency;
}

test('backoff doubles, is capped and jittered within ±20 %', (t) => {
  const policy = { initialMs: 1000, maxMs: 8000 };
  t.is(backoffDelayMs(1, policy, () => 0.5), 1000);
  t.is(backoffDelayMs(3, policy, () => 0.5), 4000);
  t.is(backoffDelayMs(10, policy, () => 0.5), 8000);
  t.is(backoffDelayMs(1, policy, () => 0), 800);
  t.is(backoffDelayMs(1, policy, () => 1), 1200);
});

test('an unreachable dependency is waited for, one line per attempt naming it, its address, the attempt and the next delay', async (t) => {
  const lines: string[] = [];
  const redis = flaky(3);
  await waitForDependencies([redis], { logger: silentLogger(lines), waitMs: null, backoff: quick });
  t.is(redis.calls, 4);
  const waiting = lines.filter((line) => line.startsWith('waiting for'));
  t.is(waiting.length, 3);
  t.regex(waiting[2]!, /^waiting for Redis at redis:\/\/127\.0\.0\.1:1 \(attempt 3, next in \d+\.\d s\)$/);
  t.true(lines.some((line) => line.includes('answers; going on')));
});

test('a non-retriable error is not waited for', async (t) => {
  const broken = flaky(1, () => new ConfigError('bad'));
  await t.throwsAsync(waitForDependencies([broken], { logger: silentLogger([]), waitMs: null, backoff: quick }), { instanceOf: ConfigError });
  t.is(broken.calls, 1);
});

test('the wait gives up after DIAMOND_DEPENDENCY_WAIT with a typed, retriable error', async (t) => {
  const error = await t.throwsAsync(waitForDependencies([flaky(Number.MAX_SAFE_INTEGER)], { logger: silentLogger([]), waitMs: 30, backoff: quick }));
  t.true(error instanceof DependencyWaitTimeoutError);
  t.like(error, { code: 'DIAMOND_DEPENDENCY_TIMEOUT', retriable: true, dependency: 'Redis' });
});

test('a start that fails with an outage is retried after waiting; any other failure is thrown', async (t) => {
  let starts = 0;
  const started = await startWhenReady([flaky(0)], async () => {
    starts += 1;
    if (starts < 3) throw new ServiceUnavailableError('Kafka', '127.0.0.1:1');
    return 'up';
  }, { logger: silentLogger([]), waitMs: null, backoff: quick });
  t.is(started, 'up');
  t.is(starts, 3);
  await t.throwsAsync(startWhenReady([flaky(0)], () => Promise.reject(new ConfigError('bad')), { logger: silentLogger([]), waitMs: null, backoff: quick }), { instanceOf: ConfigError });
});
