import test from 'ava';
import { loadConfig } from '../../shared/config.ts';
import { alertKey, alertRules, evaluateAlerts, firingByRule, formatMs, p99, RecentBatches, type AlertJobSnapshot, type AlertStatus } from './alert-rules.ts';

const settings = loadConfig({
  DIAMOND_ALERT_LAG_RECORDS: '100', DIAMOND_ALERT_LAG_FOR: '10s', DIAMOND_ALERT_BATCH_P99_MS: '5000', DIAMOND_ALERT_BATCH_P99_FOR: '0s',
  DIAMOND_ALERT_OFFSETS_RETENTION: '7d', DIAMOND_ALERT_OFFSETS_EXPIRE_WITHIN: '1d',
}).alerts;
const rules = alertRules(settings, { crashLoopMax: 5, stallTimeoutMs: 120_000 });
const only = (name: string): typeof rules => rules.filter((rule) => rule.name === name);

const job = (fields: Partial<AlertJobSnapshot> = {}): AlertJobSnapshot => ({
  job: 'uc.dq.A', usecase: 'dq', variant: 'A', state: 'running', lag: 0, batchP99Ms: 0, crashes: 0, stalledAt: null, committedAt: null, ...fields,
});

/** Runs evaluations at the given times, feeding each one's statuses to the next; returns every transition. */
function run(ruleSet: typeof rules, steps: readonly [number, AlertJobSnapshot[]][], start: ReadonlyMap<string, AlertStatus> = new Map()): { kinds: string[]; statuses: Map<string, AlertStatus> } {
  let statuses = new Map(start);
  const kinds: string[] = [];
  for (const [now, jobs] of steps) {
    const result = evaluateAlerts(ruleSet, jobs, statuses, now);
    statuses = result.statuses;
    kinds.push(...result.transitions.map((t) => `${t.kind}:${t.rule}@${now}`));
  }
  return { kinds, statuses };
}

test('lag above N is pending first, fires once after it held for T, and resolves once when it clears', (t) => {
  const { kinds, statuses } = run(only('lag'), [
    [0, [job({ lag: 500 })]],
    [5_000, [job({ lag: 600 })]],
    [10_000, [job({ lag: 700 })]],
    [15_000, [job({ lag: 800 })]],
    [20_000, [job({ lag: 50 })]],
    [25_000, [job({ lag: 40 })]],
  ]);
  t.deepEqual(kinds, ['firing:lag@10000', 'resolved:lag@20000']);
  t.is(statuses.size, 0);
});

test('a condition that clears while pending is forgotten without an event, and the clock starts over', (t) => {
  const { kinds } = run(only('lag'), [
    [0, [job({ lag: 500 })]],
    [9_000, [job({ lag: 10 })]],
    [10_000, [job({ lag: 500 })]],
    [19_000, [job({ lag: 500 })]],
    [20_000, [job({ lag: 500 })]],
  ]);
  t.deepEqual(kinds, ['firing:lag@20000']);
});

test('lag exactly at N does not fire ("above N"); an unmeasurable lag changes nothing', (t) => {
  t.deepEqual(run(only('lag'), [[0, [job({ lag: 100 })]], [60_000, [job({ lag: 100 })]]]).kinds, []);
  const { kinds, statuses } = run(only('lag'), [
    [0, [job({ lag: 500 })]], [10_000, [job({ lag: 500 })]],
    [20_000, [job({ lag: null })]], // Kafka did not answer: still firing, not resolved
    [30_000, [job({ lag: 0 })]],
  ]);
  t.deepEqual(kinds, ['firing:lag@10000', 'resolved:lag@30000']);
  t.is(statuses.size, 0);
});

test('the transitions carry what webhooks and events need', (t) => {
  const result = evaluateAlerts(only('batch-p99'), [job({ batchP99Ms: 8000 })], new Map(), 1000);
  t.deepEqual(result.transitions, [{
    kind: 'firing', rule: 'batch-p99', severity: 'warning', job: 'uc.dq.A', usecase: 'dq', variant: 'A', value: 8000, threshold: 5000, unit: 'ms',
    summary: 'uc.dq.A: batch duration p99 8 s over the last 10 min (SLO 5 s)', at: 1000, firedAt: 1000,
  }]);
  const status = result.statuses.get(alertKey('batch-p99', 'uc.dq.A'));
  t.like(status, { state: 'firing', since: 1000, firedAt: 1000, value: 8000 });
  const resolved = evaluateAlerts(only('batch-p99'), [job({ batchP99Ms: 100 })], result.statuses, 9000).transitions[0];
  t.like(resolved, { kind: 'resolved', value: 100, firedAt: 1000, at: 9000 });
});

test('crash-looping fires while the job is crash-looping, with its crashes, and resolves when it is redeployed', (t) => {
  const { kinds } = run(only('crash-looping'), [
    [0, [job({ state: 'backoff', crashes: 3 })]],
    [1_000, [job({ state: 'crash-looping', crashes: 5 })]],
    [2_000, [job({ state: 'crash-looping', crashes: 5 })]],
    [3_000, [job({ state: 'backoff', crashes: 0 })]],
  ]);
  t.deepEqual(kinds, ['firing:crash-looping@1000', 'resolved:crash-looping@3000']);
  const fired = evaluateAlerts(only('crash-looping'), [job({ state: 'crash-looping', crashes: 5 })], new Map(), 0).transitions[0];
  t.like(fired, { severity: 'critical', value: 5, threshold: 5, unit: 'crashes' });
});

test('stalled holds from a stall until the job commits again', (t) => {
  const { kinds } = run(only('stalled'), [
    [0, [job({ committedAt: 100 })]],
    [1_000, [job({ stalledAt: 900, committedAt: 100 })]],
    [5_000, [job({ stalledAt: 900, committedAt: 100, state: 'backoff' })]],
    [9_000, [job({ stalledAt: 900, committedAt: 8_500 })]],
  ]);
  t.deepEqual(kinds, ['firing:stalled@1000', 'resolved:stalled@9000']);
  const fired = evaluateAlerts(only('stalled'), [job({ stalledAt: 900, committedAt: 100 })], new Map(), 60_100).transitions[0];
  t.like(fired, { value: 60_000, threshold: 120_000, severity: 'critical' });
  const never = evaluateAlerts(only('stalled'), [job({ stalledAt: 900, committedAt: null })], new Map(), 1000).transitions;
  t.deepEqual(never.map((x) => x.kind), ['firing'], 'never committed: stalled');
  t.regex(never[0]?.summary ?? '', /never committed$/);
  t.regex(fired?.summary ?? '', /1 min without a commit$/);
});

test('offsets-expiring fires when the last commit is older than retention minus the margin, and resolves on a commit', (t) => {
  const day = 86_400_000;
  const { kinds } = run(only('offsets-expiring'), [
    [5 * day, [job({ committedAt: 0 })]],
    [6 * day, [job({ committedAt: 0 })]],
    [6 * day + 1, [job({ committedAt: 0 })]],
    [6 * day + 2, [job({ committedAt: 6 * day + 2 })]],
  ]);
  t.deepEqual(kinds, [`firing:offsets-expiring@${6 * day}`, `resolved:offsets-expiring@${6 * day + 2}`]);
  t.deepEqual(run(only('offsets-expiring'), [[30 * day, [job({ committedAt: null })]]]).kinds, [], 'no known commit: nothing to say');
  const fired = evaluateAlerts(only('offsets-expiring'), [job({ committedAt: 0 })], new Map(), 6.5 * day).transitions[0];
  t.regex(fired?.summary ?? '', /6\.5 d ago; Kafka drops them 7 d after the last commit/);
});

test('a job that is no longer deployed resolves its firing alerts and forgets its pending ones', (t) => {
  const first = evaluateAlerts(rules, [job({ state: 'crash-looping', crashes: 5, lag: 500 })], new Map(), 0);
  t.deepEqual(first.transitions.map((x) => x.rule), ['crash-looping']);
  t.is(first.statuses.get(alertKey('lag', 'uc.dq.A'))?.state, 'pending');
  const gone = evaluateAlerts(rules, [], first.statuses, 1000);
  t.deepEqual(gone.transitions.map((x) => [x.kind, x.rule, x.value, x.summary]), [['resolved', 'crash-looping', null, 'uc.dq.A: no longer deployed']]);
  t.is(gone.statuses.size, 0);
});

test('every rule keeps its own status per job', (t) => {
  const other = job({ job: 'uc.dq.B', variant: 'B', state: 'crash-looping', crashes: 5 });
  const result = evaluateAlerts(rules, [job({ batchP99Ms: 9000 }), other], new Map(), 0);
  t.deepEqual(result.transitions.map((x) => `${x.rule}:${x.job}`).sort(), ['batch-p99:uc.dq.A', 'crash-looping:uc.dq.B']);
  t.deepEqual(firingByRule(result.statuses.values()), { lag: 0, 'batch-p99': 1, 'crash-looping': 1, stalled: 0, 'offsets-expiring': 0 });
});

test('p99 is the nearest rank; recent batches keep only the window, unknown before the first', (t) => {
  t.is(p99([]), 0);
  t.is(p99([5]), 5);
  t.is(p99(Array.from({ length: 100 }, (_, i) => i + 1)), 99);
  t.is(p99(Array.from({ length: 200 }, (_, i) => 200 - i)), 198);
  const batches = new RecentBatches(60_000);
  t.is(batches.p99Ms('uc.dq.A', 0), null, 'no batch seen: unknown');
  batches.observe('uc.dq.A', 9000, 0);
  batches.observe('uc.dq.A', 100, 50_000);
  t.is(batches.p99Ms('uc.dq.A', 55_000), 9000);
  t.is(batches.p99Ms('uc.dq.A', 70_000), 100, 'the old slow batch left the window');
  t.is(batches.p99Ms('uc.dq.A', 200_000), 0, 'none in the window: clear, not unknown');
});

test('durations read as a person would say them', (t) => {
  t.is(formatMs(850), '850 ms');
  t.is(formatMs(12_500), '12.5 s');
  t.is(formatMs(300_000), '5 min');
  t.is(formatMs(2 * 86_400_000), '2 d');
});
