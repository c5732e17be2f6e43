/**
 * The JSON message contracts (shared/schemas/progress.schema.json, lifecycle-event.schema.json)
 * proven across both languages, like wire-format.test.ts for Avro: Python builds every kind of
 * progress message the runner publishes and TypeScript parses them; TypeScript builds every
 * lifecycle event and Python validates them; a malformed message is refused by both, naming
 * the same field. No Kafka needed: the contract is the bytes, not the transport.
 */
import test from 'ava';
import { join } from 'node:path';
import { buildLifecycleEvent, LIFECYCLE_EVENTS, parseLifecycleEvent, parseProgressMessage, PROGRESS_EVENTS, type LifecycleEvent, type LifecycleEventFields } from '../../shared/messages.ts';
import { config } from '../support/env.ts';
import { runPython } from '../support/python.ts';

const tool = join(config.projectRoot, 'test', 'integration', 'fixtures', 'message_tool.py');

async function python(args: readonly string[], input = ''): Promise<unknown[]> {
  const result = await runPython([tool, ...args], input);
  if (result.code !== 0) throw new Error(`message_tool.py ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown);
}

const lines = (values: readonly unknown[]): string => values.map((v) => JSON.stringify(v)).join('\n') + '\n';

test('both languages read the same event names from the schemas', async (t) => {
  t.deepEqual(await python(['events', 'progress']), [[...PROGRESS_EVENTS]]);
  t.deepEqual(await python(['events', 'lifecycle']), [[...LIFECYCLE_EVENTS]]);
});

test('every kind of progress message Python builds parses in TypeScript', async (t) => {
  const built = await python(['build-progress']);
  const parsed = built.map((message) => parseProgressMessage(JSON.stringify(message)));
  for (const [i, p] of parsed.entries()) t.true(p.ok, `${JSON.stringify(built[i])}: ${p.ok ? '' : `${p.field} ${p.problem}`}`);
  const messages = parsed.flatMap((p) => (p.ok ? [p.message] : []));
  t.deepEqual([...new Set(messages.map((m) => m.event))].sort(), [...PROGRESS_EVENTS].sort(), 'every progress event');
  const batch = messages.find((m) => m.event === 'progress' && m.batch_id === 7);
  t.deepEqual(batch?.end_offsets, { 0: 12, 1: 9 });
  t.is(batch?.input_rows_per_second, null, "Spark's NaN rate goes out as null, so the message stays JSON");
  t.false(Number.isNaN(Date.parse(batch?.at ?? '')), 'the SDK stamps a time TypeScript reads');
  const failure = messages.find((m) => m.event === 'failed' && m.error === 'user_code');
  t.like(failure, { file: 'job.py', line: 12, function: 'feedback' });
});

/** The fields the orchestrator and the control API send with each event. */
const lifecycleFields: Record<LifecycleEvent, Omit<LifecycleEventFields, 'job' | 'usecase' | 'variant'>> = {
  deployed: { version: 'v2', generation: 3 },
  undeployed: {},
  starting: { version: 'v2', restarts: 0, upgradeFrom: 'v1' },
  running: { version: 'v2', pid: 4242, upgradedFrom: 'v1' },
  failed: { version: 'v2', exitCode: 2, error: 'exited with code 2: job.py:12' },
  stalled: { version: 'v2', pid: 4242, error: 'stalled: no progress for 60 s' },
  restarted: { version: 'v2', restarts: 1, reason: 'outage' },
  'crash-looping': { version: null, crashes: 5, error: 'killed: no process' },
  stopped: { version: 'v1', exitCode: 0, by: 'diamond down' },
  adopted: { version: 'v2', pid: 4242 },
  'replay-requested': { since: '2026-11-01T10:00:00.000Z' },
  replayed: { since: '2026-11-01T10:00:00.000Z', offsets: { 0: 120, 1: 87 } },
  'backfill-requested': { since: '2026-11-01T10:00:00.000Z' },
  backfilling: { since: '2026-11-01T10:00:00.000Z', offsets: { 0: 120, 1: 87 } },
  backfilled: { version: 'v2', since: '2026-11-01T10:00:00.000Z', offsets: { 0: 120, 1: 87 }, rowsIn: 500, rowsOut: 12, rowsRejected: 0, durationMs: 2300 },
  outage: { version: 'v2', exitCode: 75, error: 'outage: exited with code 75: schema registry not reachable', outages: 2 },
  'alert-firing': { rule: 'lag', severity: 'warning', summary: 'lag 250000 records > 100000 for 5m', value: 250_000, threshold: 100_000, unit: 'records' },
  'alert-resolved': { rule: 'batch-p99', severity: 'warning', summary: 'batch p99 1.5 s ≤ 60 s', value: 1500.5, threshold: 60_000, unit: 'ms', firingSince: '2026-11-01T10:00:00.000Z' },
  'rollout-changed': { weights: { A: 0, B: 100 }, before: null, by: 'dashboard-e2e' },
};

test('every lifecycle event TypeScript builds validates in Python', async (t) => {
  const events = LIFECYCLE_EVENTS.map((event) => buildLifecycleEvent(event, { job: 'uc.spending_spike.B', usecase: 'spending_spike', variant: 'B', ...lifecycleFields[event] }));
  const verdicts = await python(['check', 'lifecycle'], lines(events));
  t.deepEqual(verdicts, events.map(() => ({ ok: true })));
});

const progressBase = { event: 'progress', job: 'uc.data_quality.A', usecase: 'data_quality', variant: 'A', version: 'v1', at: '2026-11-01T10:00:00+00:00', batch_id: 1, start_offsets: {}, end_offsets: { 0: 5 }, rows_in: 5, rows_out: 0, rows_rejected: 0 };
const eventBase = { event: 'running', at: '2026-11-01T10:00:00.000Z', job: 'uc.data_quality.A', usecase: 'data_quality', variant: 'A', version: 'v1' };
const malformed: { contract: 'progress' | 'lifecycle'; message: unknown; field: string }[] = [
  { contract: 'progress', message: [progressBase], field: '(message)' },
  { contract: 'progress', message: { ...progressBase, event: 'finished' }, field: 'event' },
  { contract: 'progress', message: { ...progressBase, job: '' }, field: 'job' },
  { contract: 'progress', message: { ...progressBase, at: 'yesterday' }, field: 'at' },
  { contract: 'progress', message: { ...progressBase, end_offsets: { 0: '5' } }, field: 'end_offsets.0' },
  { contract: 'progress', message: { ...progressBase, end_offsets: { 0: true } }, field: 'end_offsets.0' },
  { contract: 'progress', message: { ...progressBase, batch_id: -1 }, field: 'batch_id' },
  { contract: 'progress', message: { ...progressBase, end_offsets: undefined }, field: 'end_offsets' },
  { contract: 'progress', message: { ...progressBase, event: 'failed', message: 'boom' }, field: 'error' },
  { contract: 'progress', message: { ...progressBase, variant: undefined }, field: 'variant' },
  { contract: 'lifecycle', message: { ...eventBase, event: 'exploded' }, field: 'event' },
  { contract: 'lifecycle', message: { ...eventBase, at: undefined }, field: 'at' },
  { contract: 'lifecycle', message: { ...eventBase, pid: 'forty-two' }, field: 'pid' },
  { contract: 'lifecycle', message: { ...eventBase, event: 'replayed' }, field: 'since' },
  { contract: 'lifecycle', message: { ...eventBase, offsets: { 0: 1.5 } }, field: 'offsets.0' },
  { contract: 'lifecycle', message: { ...eventBase, event: 'alert-firing', rule: 'lag', severity: 'warning', summary: 's', value: 3, unit: 'records' }, field: 'threshold' },
  { contract: 'lifecycle', message: { ...eventBase, event: 'alert-resolved', rule: 'lagging', severity: 'warning', summary: 's', value: 3, threshold: 1, unit: 'records' }, field: 'rule' },
  { contract: 'lifecycle', message: { ...eventBase, event: 'alert-firing', rule: 'lag', severity: 'warning', summary: 's', value: '3', threshold: 1, unit: 'records' }, field: 'value' },
  { contract: 'lifecycle', message: { ...eventBase, event: 'rollout-changed', variant: '*', before: null }, field: 'weights' },
  { contract: 'lifecycle', message: { ...eventBase, event: 'rollout-changed', variant: '*', weights: { A: -1 }, before: null }, field: 'weights.A' },
];

test('a malformed message is refused by both languages, naming the same field', async (t) => {
  for (const contract of ['progress', 'lifecycle'] as const) {
    const cases = malformed.filter((c) => c.contract === contract);
    const verdicts = (await python(['check', contract], lines(cases.map((c) => c.message)))) as { ok: boolean; field?: string }[];
    for (const [i, c] of cases.entries()) {
      const ts = contract === 'progress' ? parseProgressMessage(JSON.stringify(c.message)) : parseLifecycleEvent(JSON.stringify(c.message));
      t.false(ts.ok, `TypeScript accepted ${JSON.stringify(c.message)}`);
      t.is(ts.ok ? null : ts.field, c.field, `TypeScript: ${JSON.stringify(c.message)}`);
      t.like(verdicts[i], { ok: false, field: c.field }, `Python: ${JSON.stringify(c.message)}`);
    }
  }
});

test("Python's builder refuses a malformed progress message, naming the field, before anything is sent", async (t) => {
  const identity = { job: 'uc.data_quality.A', usecase: 'data_quality', variant: 'A', version: 'v1' };
  const specs = [
    { event: 'progress', fields: { ...identity, batch_id: 1, start_offsets: {}, end_offsets: { 0: '5' }, rows_in: 1, rows_out: 0, rows_rejected: 0 } },
    { event: 'progress', fields: { ...identity, batch_id: 1, start_offsets: {}, rows_in: 1, rows_out: 0, rows_rejected: 0 } },
    { event: 'stopped', fields: { ...identity, last_batch_id: 3, surprise: 1 } },
    { event: 'done', fields: identity },
  ];
  const refused = (await python(['build-bad'], lines(specs))) as { field: string | null; message?: string }[];
  t.deepEqual(refused.map((r) => r.field), ['end_offsets.0', 'end_offsets', 'surprise', 'event']);
  t.regex(refused[0]?.message ?? '', /progress\.schema\.json: end_offsets\.0 must be integer/);
});
