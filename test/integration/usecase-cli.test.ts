/** `diamond usecase new` scaffolds a folder whose tests and dry run pass as generated. */
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
