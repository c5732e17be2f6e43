/**
 * What a command prints, for people or for scripts. With `--json` (a global option) stdout
 * carries one JSON document (or, for commands that stream, one JSON object per line) and
 * nothing else; progress and notes go to stderr; a failure is one JSON object on stderr.
 */
import { DiamondError } from '../../shared/errors.ts';

/** One JSON document with --json, else the text for people; both on stdout. */
export function printResult(json: boolean, result: unknown, text: string): void {
  process.stdout.write((json ? JSON.stringify(result, null, 2) : text.replace(/\n$/, '')) + '\n');
}

/** Rows under their column names, aligned (strings as they are, other values as JSON). */
export function formatTable(names: readonly string[], rows: readonly (readonly unknown[])[]): string[] {
  const cells = rows.map((row) => row.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))));
  const widths = names.map((name, i) => Math.max(name.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (values: readonly string[]): string => values.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(names), ...cells.map(line)];
}

/** One line of a streamed output: a JSON object per line with --json. */
export function printLine(json: boolean, result: Readonly<Record<string, unknown>>, text: string): void {
  process.stdout.write((json ? JSON.stringify(result) : text) + '\n');
}

/** The failure as scripts read it: code, message, hint, whether retrying can help. */
export function errorDocument(error: unknown): { error: { code: string; message: string; hint: string | null; retriable: boolean } } {
  if (error instanceof DiamondError) return { error: { code: error.code, message: error.message, hint: error.hint ?? null, retriable: error.retriable } };
  return { error: { code: 'DIAMOND_INTERNAL', message: error instanceof Error ? error.message : String(error), hint: null, retriable: false } };
}

/** Whether this invocation asked for JSON (read before yargs has parsed, for its own failures). */
export function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json') || argv.includes('--json=true');
}

/** The `--json` option as each command declares it (typed in its handler; also global in main.ts). */
export const jsonOption = { type: 'boolean', default: false, describe: 'machine-readable output on stdout' } as const;

/**
 * Writes streamed text: as is, or with --json one {"line": …} object per line (a line
 * split across chunks waits for its end; `end()` flushes the last one).
 */
export function lineStream(json: boolean): { write(chunk: string): void; end(): void } {
  let partial = '';
  return {
    write(chunk) {
      if (!json) return void process.stdout.write(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) printLine(true, { line }, line);
    },
    end() {
      if (json && partial) printLine(true, { line: partial }, partial);
      partial = '';
    },
  };
}
