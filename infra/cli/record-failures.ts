/**
 * The per-record failures `diamond usecase test` prints before its summary: the SDK's test
 * harness appends one RecordFailure (shared/schemas/record-failure.schema.json) per record a
 * use case's feedback() raised on to the file named by DIAMOND_RECORD_FAILURES, in pytest and
 * in the dry run alike, so they are shown whether or not the tests pass.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseRecordFailure, type RecordFailure } from '../../shared/messages.ts';

/** Where the harness writes them (record_failure.py FAILURES_FILE_ENV). */
export const RECORD_FAILURES_ENV = 'DIAMOND_RECORD_FAILURES';

/** Which run of `usecase test` saw the failure. */
export type FailurePhase = 'tests' | 'dry run';

export interface ReportedFailure {
  readonly phase: FailurePhase;
  readonly failure: RecordFailure;
}

/**
 * The failures in `file` (none when it does not exist). A line that breaks the contract is a
 * bug in the SDK, not in the use case: it throws naming the field.
 */
export function readRecordFailures(file: string, phase: FailurePhase): ReportedFailure[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '').map((line, index) => {
    const parsed = parseRecordFailure(line);
    if (!parsed.ok) throw new Error(`${file}:${index + 1}: a record failure whose ${parsed.field} ${parsed.problem}`);
    return { phase, failure: parsed.message };
  });
}

/** `<file>:<line> in feedback(): ValueError: message`, as the SDK's RecordError says it. */
export function describeFailure(failure: RecordFailure): string {
  const where = failure.file ? `${failure.file}:${failure.line ?? '?'}` : "(outside the use case's files)";
  const fn = failure.function ? ` in ${failure.function}()` : '';
  return `${where}${fn}: ${failure.exception}: ${failure.message}`;
}

/** The text for people: one block per failure, the record on its own line. */
export function formatRecordFailures(reported: readonly ReportedFailure[]): string {
  if (reported.length === 0) return '';
  const lines = [`── ${reported.length} record${reported.length === 1 ? '' : 's'} raised in feedback():`];
  for (const { phase, failure } of reported) {
    const expected = failure.expected ? ' (the test expected this rejection)' : '';
    lines.push(`  [${phase}] variant ${failure.variant}, record ${failure.record_id ?? '(no id)'}${expected}`);
    lines.push(`    at ${describeFailure(failure)}`);
    lines.push(`    record: ${JSON.stringify(failure.record)}`);
  }
  return lines.join('\n') + '\n';
}
