/**
 * `diamond usecase new` scaffolds a folder whose tests and dry run pass as generated;
 * `diamond usecase test` on a deliberately broken per-record use case shows each record its
 * feedback() raised on, with the user's file, line and message, before its summary.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { config } from '../support/env.ts';

const run = promisify(execFile);
const cli = join(config.projectRoot, 'infra', 'cli', 'bin.js');

test('a scaffolded use case passes its own tests and its dry run prints the feedback it would emit', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'diamond-usecases-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const created = await run(cli, ['usecase', 'new', 'late_payments', '--root', root]);
  t.regex(created.stdout, /created .*late_payments/);
  t.regex(readFileSync(join(root, 'late_payments', 'usecase.yaml'), 'utf8'), /^name: late_payments$/m);

  const again = await t.throwsAsync(run(cli, ['usecase', 'new', 'late_payments', '--root', root]));
  t.regex(String((again as { stderr?: string } | undefined)?.stderr), /already exists/);

  const tested = await run(cli, ['usecase', 'test', 'late_payments', '--root', root, '--json'], { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
  const rows = tested.stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  t.deepEqual(rows.map((row) => [row['variant'], row['customer_id'], row['kind'], row['record_ids']]), [['A', 'acme', 'large_amount', ['r-2']]]);
  t.is(rows[0]?.['usecase'], 'late_payments');
});

test('usecase test of a per-record job that raises on every record prints each failure with the user\'s file, line, message and record before its summary', async (t) => {
  const root = join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases');
  const job = join(root, 'broken_per_record', 'job.py');
  const failed = await t.throwsAsync(run(cli, ['usecase', 'test', 'broken_per_record', '--root', root], { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 }));
  const { stdout = '', stderr = '', code } = (failed ?? {}) as { stdout?: string; stderr?: string; code?: number };
  t.is(code, 1, stderr.slice(-2000));
  t.regex(stderr, /the tests of broken_per_record failed/);
  // pytest's own report names the user's line (RecordError), not only `assert [] == [...]`.
  const escaped = job.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  t.regex(stdout, new RegExp(`^E +at ${escaped}:9 in feedback\\(\\): KeyError: 'threshold'$`, 'm'), stdout.slice(-4000));
  const listed = stdout.slice(stdout.indexOf('records raised in feedback():'));
  t.regex(listed, /^records raised in feedback\(\):/, stdout.slice(-4000));
  for (const phase of ['tests', 'dry run']) {
    for (const [id, line, message] of [['r-1', 9, "KeyError: 'threshold'"], ['r-2', 8, "KeyError: 'recrd_id'"], ['r-3', 9, "KeyError: 'threshold'"]] as const) {
      t.true(listed.includes(`[${phase}] variant A, record ${id}\n    at ${job}:${line} in feedback(): ${message}\n    record: {"record_id":"${id}",`), `${phase} ${id}\n${listed}`);
    }
  }
  t.regex(listed, /── broken_per_record: tests failed, dry run done, 6 unexpected record failures\n$/, 'the summary comes after the failures');
});
