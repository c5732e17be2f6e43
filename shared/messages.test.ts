import test from 'ava';
import {
  buildLifecycleEvent, buildRunEvent, LIFECYCLE_EVENTS, MessageContractError, parseRunEvent, RUN_EVENTS, parseLifecycleEvent, parseProgressMessage, parseRecordFailure, PROGRESS_EVENTS, readMessageSchema,
  type LifecycleEvent, type LifecycleEventMessage, type RunEvent, type RunEventMessage, type ProgressEvent, type ProgressMessage, type RecordFailure,
} from './messages.ts';

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];

// `satisfies` fails to compile when a key is missing or extra: these lists are the TS types' keys.
const progressKeys = {
  event: true, job: true, usecase: true, variant: true, version: true, at: true, run_id: true, ui_url: true, batch_id: true, start_offsets: true, end_offsets: true,
  rows_in: true, rows_out: true, rows_rejected: true, input_rows_per_second: true, processed_rows_per_second: true, durations_ms: true,
  since: true, history_batch: true, files: true, duration_ms: true, last_batch_id: true, error: true, message: true, file: true, line: true, function: true, signature: true,
} as const satisfies Record<keyof ProgressMessage, true>;
const progressRequired = { event: true, job: true, usecase: true, variant: true, at: true } as const satisfies Record<RequiredKeys<ProgressMessage>, true>;
const lifecycleKeys = {
  event: true, at: true, job: true, usecase: true, variant: true, version: true, generation: true, pid: true, exitCode: true, error: true,
  restarts: true, crashes: true, upgradeFrom: true, upgradedFrom: true, since: true, offsets: true, pauseMs: true, drainMs: true, rowsIn: true, rowsOut: true, rowsRejected: true, durationMs: true, by: true, outages: true, reason: true,
  rule: true, severity: true, summary: true, value: true, threshold: true, unit: true, firingSince: true, warm: true, cold: true, weights: true, before: true,
} as const satisfies Record<keyof LifecycleEventMessage, true>;
const lifecycleRequired = { event: true, at: true, job: true, usecase: true, variant: true } as const satisfies Record<RequiredKeys<LifecycleEventMessage>, true>;
const recordFailureKeys = {
  usecase: true, variant: true, record_id: true, customer_id: true, exception: true, message: true, file: true, line: true, function: true,
  traceback: true, record: true, expected: true,
} as const satisfies Record<keyof RecordFailure, true>;
const recordFailureRequired = {
  usecase: true, variant: true, exception: true, message: true, file: true, line: true, function: true, traceback: true, record: true,
} as const satisfies Record<RequiredKeys<RecordFailure>, true>;
const progressEvents = { started: true, progress: true, stopped: true, failed: true, backfilling: true, backfilled: true } as const satisfies Record<ProgressEvent, true>;
const lifecycleEvents = {
  deployed: true, undeployed: true, starting: true, running: true, failed: true, stalled: true, restarted: true, 'crash-looping': true,
  stopped: true, adopted: true, 'replay-requested': true, replayed: true,
  'backfill-requested': true, backfilling: true, backfilled: true, outage: true, 'alert-firing': true, 'alert-resolved': true, 'rollout-changed': true,
} as const satisfies Record<LifecycleEvent, true>;

const sorted = (keys: Iterable<string>): string[] => [...keys].sort();

test('the TypeScript types name exactly the schemas\' properties, required fields and event names', (t) => {
  const progress = readMessageSchema('progress');
  const lifecycle = readMessageSchema('lifecycle');
  t.deepEqual(sorted(Object.keys(progress.properties)), sorted(Object.keys(progressKeys)));
  t.deepEqual(sorted(progress.required), sorted(Object.keys(progressRequired)));
  t.deepEqual(sorted(Object.keys(lifecycle.properties)), sorted(Object.keys(lifecycleKeys)));
  t.deepEqual(sorted(lifecycle.required), sorted(Object.keys(lifecycleRequired)));
  const failure = readMessageSchema('recordFailure');
  t.deepEqual(sorted(Object.keys(failure.properties)), sorted(Object.keys(recordFailureKeys)));
  t.deepEqual(sorted(failure.required), sorted(Object.keys(recordFailureRequired)));
  t.deepEqual(sorted(PROGRESS_EVENTS), sorted(Object.keys(progressEvents)));
  t.deepEqual(sorted(LIFECYCLE_EVENTS), sorted(Object.keys(lifecycleEvents)));
});

const at = '2026-11-01T10:00:00.123456+00:00';
const base = { job: 'uc.data_quality.A', usecase: 'data_quality', variant: 'A', version: 'abc123', at };
const batch = { ...base, event: 'progress', batch_id: 3, start_offsets: { 0: 10 }, end_offsets: { 0: 12, 1: 4 }, rows_in: 6, rows_out: 2, rows_rejected: 0, processed_rows_per_second: null, durations_ms: { triggerExecution: 120 } };

test('a well-formed progress message parses, from text or a buffer; unknown fields are tolerated', (t) => {
  const parsed = parseProgressMessage(JSON.stringify({ ...batch, added_later: 'ok' }));
  t.true(parsed.ok);
  if (parsed.ok) t.deepEqual(parsed.message.end_offsets, { 0: 12, 1: 4 });
  t.true(parseProgressMessage(Buffer.from(JSON.stringify({ ...base, event: 'failed', error: 'platform', message: 'boom' }))).ok);
  t.true(parseProgressMessage({ job: 'uc.x.A', usecase: 'x', variant: 'A', at: '2026-11-01T10:00:00Z', event: 'failed', error: 'user_code', message: 'm', file: null, line: null }).ok);
});

test('a malformed progress message is refused with the field that is wrong', (t) => {
  const cases: [unknown, string, RegExp][] = [
    ['{not json', '(message)', /not JSON/],
    [[1, 2], '(message)', /must be object/],
    [{ ...batch, event: 'finished' }, 'event', /one of started, progress, stopped, failed/],
    [{ ...batch, job: undefined }, 'job', /required/],
    [{ ...batch, at: 'yesterday' }, 'at', /must match/],
    [{ ...batch, end_offsets: { 0: '12' } }, 'end_offsets.0', /must be integer/],
    [{ ...batch, end_offsets: { 0: -1 } }, 'end_offsets.0', /at least 0/],
    [{ ...batch, batch_id: 1.5 }, 'batch_id', /must be integer/],
    [{ ...batch, end_offsets: undefined }, 'end_offsets', /required/],
    [{ ...base, event: 'stopped' }, 'last_batch_id', /required/],
  ];
  for (const [message, field, problem] of cases) {
    const parsed = parseProgressMessage(typeof message === 'string' ? message : JSON.stringify(message));
    t.false(parsed.ok, JSON.stringify(message));
    if (!parsed.ok) {
      t.is(parsed.field, field, JSON.stringify(message));
      t.regex(parsed.problem, problem);
    }
  }
});

test('lifecycle events are built stamped and checked; a bad one throws naming the field', (t) => {
  const event = buildLifecycleEvent('running', { job: 'uc.a.A', usecase: 'a', variant: 'A', version: 'v1', pid: 42, upgradedFrom: undefined }, new Date(Date.UTC(2026, 10, 1)));
  t.deepEqual(event, { event: 'running', at: '2026-11-01T00:00:00.000Z', job: 'uc.a.A', usecase: 'a', variant: 'A', version: 'v1', pid: 42 });
  t.true(parseLifecycleEvent(JSON.stringify(event)).ok);
  const error = t.throws(() => buildLifecycleEvent('replayed', { job: 'uc.a.A', usecase: 'a', variant: 'A' }), { instanceOf: MessageContractError });
  t.is(error?.field, 'since');
  t.is(error?.code, 'DIAMOND_MESSAGE_INVALID');
  const parsed = parseLifecycleEvent({ ...event, event: 'exploded' });
  t.false(parsed.ok);
  if (!parsed.ok) t.is(parsed.field, 'event');
});

test('a record failure parses; one without the line or with a text line is refused naming the field', (t) => {
  const failure = {
    usecase: 'x', variant: 'A', record_id: 'r1', customer_id: 'c', exception: 'ValueError', message: 'no', file: '/u/x/job.py', line: 9,
    function: 'feedback', traceback: 'Traceback …', record: { record_id: 'r1' },
  };
  t.true(parseRecordFailure(JSON.stringify(failure)).ok);
  t.true(parseRecordFailure({ ...failure, file: null, line: null, function: null, expected: true }).ok);
  const missing = parseRecordFailure(JSON.stringify({ ...failure, line: undefined }));
  t.deepEqual(missing.ok ? null : [missing.field, missing.problem], ['line', 'is required']);
  const text = parseRecordFailure({ ...failure, line: '9' });
  t.is(text.ok ? null : text.field, 'line');
});

const runKeys = { event: true, at: true, run: true, function: true, usecase: true, by: true, session: true, queuedMs: true, durationMs: true, error: true, result: true } as const satisfies Record<keyof RunEventMessage, true>;
const runRequired = { event: true, at: true, run: true, function: true, usecase: true } as const satisfies Record<RequiredKeys<RunEventMessage>, true>;
const runEvents = { queued: true, started: true, finished: true, failed: true, cancelled: true, 'timed-out': true } as const satisfies Record<RunEvent, true>;

test('the run event type names exactly run-event.schema.json; a failed run needs its error', (t) => {
  const schema = readMessageSchema('run');
  t.deepEqual(sorted(Object.keys(schema.properties)), sorted(Object.keys(runKeys)));
  t.deepEqual(sorted(schema.required), sorted(Object.keys(runRequired)));
  t.deepEqual(sorted(RUN_EVENTS), sorted(Object.keys(runEvents)));
  const fields = { run: 'r-1', function: 'customer_insights.customer_summary', usecase: 'customer_insights' };
  t.is(buildRunEvent('queued', fields).event, 'queued');
  t.true(parseRunEvent(JSON.stringify(buildRunEvent('timed-out', { ...fields, error: { code: 'run_timeout', message: 'over 60s' } }))).ok);
  const error = t.throws(() => buildRunEvent('failed', fields), { instanceOf: MessageContractError });
  t.is(error?.field, 'error');
});
