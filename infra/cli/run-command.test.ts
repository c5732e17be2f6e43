import test from 'ava';
import { DiamondError } from '../../shared/errors.ts';
import type { RunRecord } from '../orchestrator/run-store.ts';
import { formatRun, parseParamPairs, parseWaitSeconds, runFailure } from './run-command.ts';

const base: RunRecord = {
  id: '0ef6da1e-2953-4618-b156-05c42e3221fa', function: 'customer_insights.customer_summary', usecase: 'customer_insights', version: 'v1', params: {}, state: 'finished', by: 'ci',
  queuedAt: '2026-12-03T12:00:00.000Z', startedAt: '2026-12-03T12:00:00.100Z', endedAt: '2026-12-03T12:00:00.600Z', session: 's', result: null, error: null, timings: null, events: [],
};

test('--param name=value pairs; a value may hold =; a pair without a name is refused with an example', (t) => {
  t.deepEqual(parseParamPairs(['customer_id=acme', 'since=7d', 'q=a=b']), { customer_id: 'acme', since: '7d', q: 'a=b' });
  const error = t.throws(() => parseParamPairs(['acme']), { instanceOf: DiamondError });
  t.regex(error.hint ?? '', /--param customer_id=acme/);
});

test('--wait: durations to whole seconds, capped below the client timeout', (t) => {
  t.is(parseWaitSeconds('30s'), 30);
  t.is(parseWaitSeconds('1500ms'), 2);
  t.is(parseWaitSeconds('45'), 45);
  t.is(parseWaitSeconds('10m'), 110);
  t.throws(() => parseWaitSeconds('soon'), { instanceOf: DiamondError });
});

test('a value prints as JSON, rows as a table, a run still going says how to see it', (t) => {
  t.regex(formatRun({ ...base, result: { kind: 'value', value: { records: 3 } } }), /"records": 3[\s\S]*finished in 500 ms/);
  const table = formatRun({ ...base, result: { kind: 'rows', columns: [{ name: 'currency', type: 'string' }, { name: 'spend', type: 'double' }], rows: [['EUR', 30.25], ['USD', 12.5]], truncated: false } });
  t.regex(table, /^currency {2}spend\nEUR {7}30\.25\nUSD {7}12\.5\n\(2 rows/);
  t.regex(formatRun({ ...base, state: 'running', endedAt: null }), /is running[\s\S]*npx diamond run 0ef6da1e/);
});

test("a failed run is an error naming the user's file and line and what to do", (t) => {
  const error = runFailure({ ...base, state: 'failed', error: { code: 'user_code', file: 'functions.py', line: 9, function: 'boom', message: 'ZeroDivisionError: division by zero' } });
  t.regex(error?.message ?? '', /failed: user_code at functions\.py:9 in boom: ZeroDivisionError/);
  t.regex(error?.hint ?? '', /fix the function/);
  t.regex(runFailure({ ...base, state: 'timed-out', error: { code: 'run_timeout', message: 'over' } })?.hint ?? '', /run_timeout/);
  t.is(runFailure(base), null);
});
