/**
 * `diamond usecase env <name>` prints an interpreter that, started as an IDE or a notebook
 * starts it (no PYTHONPATH, no JAVA_HOME), imports the SDK of this checkout and the use
 * case's own requirements, and runs run_usecase on a local SparkSession.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { config } from '../support/env.ts';

const run = promisify(execFile);
const cli = join(config.projectRoot, 'infra', 'cli', 'bin.js');
const fixtures = join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases');
// What an IDE's process has: no DIAMOND_*, PYTHONPATH, JAVA_HOME or PYSPARK_PYTHON.
const bare = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp' };

interface Interpreter { python: string; sdk: string; sitePackages: string[]; usecase: string; usecaseEnv: string | null; requirements: string[] }

test('the interpreter of a use case with requirements imports the SDK and its requirement', async (t) => {
  const { stdout } = await run(cli, ['usecase', 'env', 'with_requirements', '--root', fixtures, '--json'], { timeout: 600_000 });
  const env = JSON.parse(stdout) as Interpreter;
  t.is(env.usecase, 'with_requirements');
  t.deepEqual(env.requirements, ['humanize==4.12.1']);
  t.truthy(env.usecaseEnv);
  t.is(env.sdk, join(config.projectRoot, 'usecases', 'sdk'));
  const probe = 'import json, diamond_sdk, humanize\nprint(json.dumps({"sdk": diamond_sdk.__file__, "humanize": humanize.__version__}))';
  const imported = JSON.parse((await run(env.python, ['-c', probe], { env: bare })).stdout) as { sdk: string; humanize: string };
  t.is(imported.sdk, join(env.sdk, 'diamond_sdk', '__init__.py'), "this checkout's SDK");
  t.is(imported.humanize, '4.12.1');
});

test('the interpreter of a use case without requirements prints as one line, has only the platform\'s packages and runs run_usecase', async (t) => {
  const { stdout } = await run(cli, ['usecase', 'env', 'data_quality'], { timeout: 120_000 });
  const python = stdout.trim();
  t.regex(python, /^\/\S+\/bin\/python$/, 'only the path on stdout');
  const other = await t.throwsAsync(run(python, ['-c', 'import humanize'], { env: bare }));
  t.regex(String((other as { stderr?: string } | undefined)?.stderr), /No module named 'humanize'/, "another use case's requirement is not there");
  // The findings usecases/data_quality/tests expects from its sample.
  const script = 'import json\nfrom diamond_sdk.testing import run_usecase\nresult = run_usecase("usecases/data_quality")\nprint(json.dumps(sorted(row["kind"] for row in result.feedback)))';
  const ran = await run(python, ['-c', script], { env: bare, cwd: config.projectRoot, timeout: 300_000 });
  const kinds = JSON.parse(ran.stdout.trim().split('\n').at(-1) ?? 'null') as unknown;
  t.deepEqual(kinds, ['amount_out_of_range', 'future_timestamp', 'missing_amount', 'missing_currency', 'negative_amount'], ran.stderr.slice(-2000));
});

test('an unknown use case is refused with its code on stderr', async (t) => {
  const failed = await t.throwsAsync(run(cli, ['usecase', 'env', 'no_such_usecase', '--json']));
  const { error } = JSON.parse(String((failed as { stderr?: string } | undefined)?.stderr)) as { error: { code: string } };
  t.is(error.code, 'DIAMOND_USECASE_UNKNOWN');
});
