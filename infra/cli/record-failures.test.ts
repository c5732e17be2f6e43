import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatRecordFailures, readRecordFailures } from './record-failures.ts';

const failure = {
  usecase: 'late', variant: 'A', record_id: 'r-2', customer_id: 'acme', exception: 'KeyError', message: "'recrd_id'",
  file: '/u/late/job.py', line: 8, function: 'feedback', traceback: 'Traceback …', record: { record_id: 'r-2', amount: 2500 },
};

function reportFile(t: { teardown(fn: () => void): void }, lines: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'diamond-failures-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tests.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

test('each failure is printed with its file, line, message and record; expected ones are marked', (t) => {
  const file = reportFile(t, [JSON.stringify(failure), JSON.stringify({ ...failure, record_id: 'r-3', file: null, line: null, function: null, expected: true })]);
  t.is(formatRecordFailures(readRecordFailures(file, 'tests')), [
    '── 2 records raised in feedback():',
    '  [tests] variant A, record r-2',
    "    at /u/late/job.py:8 in feedback(): KeyError: 'recrd_id'",
    '    record: {"record_id":"r-2","amount":2500}',
    '  [tests] variant A, record r-3 (the test expected this rejection)',
    "    at (outside the use case's files): KeyError: 'recrd_id'",
    '    record: {"record_id":"r-2","amount":2500}',
    '',
  ].join('\n'));
});

test('no report file, no failures, nothing printed', (t) => {
  t.deepEqual(readRecordFailures(join(tmpdir(), 'diamond-no-such-report.jsonl'), 'dry run'), []);
  t.is(formatRecordFailures([]), '');
});

test('a line that breaks the contract is an SDK bug named by its line and field', (t) => {
  const file = reportFile(t, [JSON.stringify(failure), JSON.stringify({ ...failure, exception: undefined })]);
  t.throws(() => readRecordFailures(file, 'tests'), { message: /tests\.jsonl:2: a record failure whose exception is required/ });
});
