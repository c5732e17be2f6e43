/**
 * The orchestrator's progress consumer against the contract: a malformed message is logged
 * with the field that is wrong and skipped, never thrown (it would wedge the consumer on the
 * same offset). Nothing here reaches a server: refused messages return before any I/O.
 */
import test from 'ava';
import { pino } from 'pino';
import { ProgressIngest } from './progress-ingest.ts';
import { DeploymentStore } from './store.ts';

test('a malformed progress message is skipped with a warning naming the field', async (t) => {
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  // Refused messages return before any client is used, so none needs to be connected.
  const unused = null as never;
  const ingest = new ProgressIngest(unused, unused, new DeploymentStore(unused), { jobPrefix: '', progressGroup: 'unused', topics: { input: 'unused', output: 'unused', rejected: 'unused', progress: 'unused', events: 'unused' } }, log);
  const base = { event: 'progress', job: 'uc.data_quality.A', usecase: 'data_quality', variant: 'A', version: 'v1', at: new Date().toISOString(), batch_id: 1, start_offsets: {}, rows_in: 1, rows_out: 0, rows_rejected: 0 };
  const cases: [string, string][] = [
    ['not json at all', '(message)'],
    [JSON.stringify({ ...base, end_offsets: { 0: 'twelve' } }), 'end_offsets.0'],
    [JSON.stringify(base), 'end_offsets'],
    [JSON.stringify({ ...base, end_offsets: { 0: 1 }, event: 'exploded' }), 'event'],
  ];
  for (const [raw] of cases) await t.notThrowsAsync(ingest.handle(raw));
  // (kafkajs logs through the same logger; only the progress consumer's lines count here)
  const warnings = lines.map((line) => JSON.parse(line) as { field?: string; msg: string }).filter((w) => w.msg.startsWith('ignored a malformed progress message: '));
  t.deepEqual(warnings.map((w) => w.field), cases.map(([, field]) => field));
});
