import test from 'ava';
import { backoffDelayMs, decideAfterCrash, jobIdFor, lagOf, offsetsToAdvance, recentCrashes, startingOffsetsArgument, watchProgress } from './state.ts';

const policy = { backoffInitialMs: 1000, backoffMaxMs: 10_000, crashLoopMax: 3, crashWindowMs: 60_000 };

test('backoff doubles per attempt, is capped, and jitters within ±20 %', (t) => {
  t.is(backoffDelayMs(1, policy, () => 0.5), 1000);
  t.is(backoffDelayMs(2, policy, () => 0.5), 2000);
  t.is(backoffDelayMs(4, policy, () => 0.5), 8000);
  t.is(backoffDelayMs(10, policy, () => 0.5), 10_000);
  t.is(backoffDelayMs(1, policy, () => 0), 800);
  t.is(backoffDelayMs(1, policy, () => 1), 1200);
  t.is(backoffDelayMs(10, policy, () => 1), 10_000, 'jitter never exceeds the cap');
});

test('crashes outside the window are forgotten; the Nth inside it means crash-looping', (t) => {
  t.deepEqual(recentCrashes([0, 50_000], 100_000, 60_000), [50_000, 100_000]);
  const first = decideAfterCrash({ crashes: [], restarts: 0 }, 1000, policy, () => 0.5);
  t.deepEqual(first, { kind: 'restart', delayMs: 0, crashes: [1000] }, 'the first crash restarts at once');
  const second = decideAfterCrash({ crashes: [1000], restarts: 1 }, 2000, policy, () => 0.5);
  t.deepEqual(second, { kind: 'restart', delayMs: 1000, crashes: [1000, 2000] }, 'backoff from the second crash');
  const aged = decideAfterCrash({ crashes: [1000], restarts: 7 }, 200_000, policy, () => 0.5);
  t.is(aged.kind === 'restart' ? aged.delayMs : -1, 0, 'a crash alone in the window restarts at once, whatever came before');
  t.is(decideAfterCrash({ crashes: [1000, 2000], restarts: 2 }, 3000, policy).kind, 'crash-looping');
  t.is(decideAfterCrash({ crashes: [1000, 2000], restarts: 2 }, 200_000, policy).kind, 'restart', 'old crashes age out');
});

test('offsets never move backwards', (t) => {
  t.deepEqual(offsetsToAdvance({ 0: 10, 1: 5 }, { 0: 12, 1: 5 }), { 0: 12 });
  t.deepEqual(offsetsToAdvance({ 0: 10, 1: 5 }, { 0: 3, 1: 4 }), {});
  t.deepEqual(offsetsToAdvance({ 0: -1 }, { 0: 0, 1: 7 }), { 0: 0, 1: 7 });
  t.deepEqual(offsetsToAdvance({}, { 0: -1 }), {}, 'nonsense offsets are ignored');
});

test('starting offsets: committed ones as Spark JSON, the fallback for the rest or for everything', (t) => {
  t.is(startingOffsetsArgument('in', [0, 1], {}, 'earliest'), 'earliest');
  t.is(startingOffsetsArgument('in', [0, 1], { 0: -1, 1: -1 }, 'latest'), 'latest');
  t.is(startingOffsetsArgument('in', [0, 1], { 0: 42, 1: 7 }, 'latest'), '{"in":{"0":42,"1":7}}');
  t.is(startingOffsetsArgument('in', [0, 1], { 0: 42 }, 'earliest'), '{"in":{"0":42,"1":-2}}');
  t.is(startingOffsetsArgument('in', [0, 1], { 1: 3 }, 'latest'), '{"in":{"0":-1,"1":3}}');
});

test('job ids and lag', (t) => {
  t.is(jobIdFor('data_quality', 'A'), 'uc.data_quality.A');
  t.is(jobIdFor('data_quality', 'B', 't-1.'), 't-1.uc.data_quality.B');
  t.is(lagOf({ 0: 10, 1: -1 }, { 0: 15, 1: 4 }), 9);
  t.is(lagOf({ 0: 20 }, { 0: 15 }), 0);
});

test('a job is stalled only when its offsets stand still while input waits, for the whole timeout', (t) => {
  const first = watchProgress(null, 10, 5, 0, 1000);
  t.is(first.kind, 'ok');
  t.is(watchProgress(first.watch, 10, 8, 999, 1000).kind, 'ok', 'not yet');
  const stalled = watchProgress(first.watch, 10, 8, 1000, 1000);
  t.is(stalled.kind, 'stalled');
  if (stalled.kind === 'stalled') t.regex(stalled.reason, /8 records wait/);
  t.deepEqual(watchProgress(first.watch, 12, 8, 5000, 1000), { kind: 'ok', watch: { committed: 12, lag: 8, since: 5000 } }, 'an advance restarts the clock');
  t.is(watchProgress(first.watch, 10, 0, 5000, 1000).kind, 'ok', 'nothing to read is idle, not stalled');
});
