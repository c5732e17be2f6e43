/**
 * The Python suites, run in the platform virtualenv as part of `npm test`: the SDK's own
 * tests and every use case's tests/ folder (each on a local SparkSession, no Kafka).
 */
import test from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { config } from './support/env.ts';
import { runPython } from './support/python.ts';

const usecases = join(config.projectRoot, 'usecases');
const suites = [
  join(usecases, 'sdk', 'tests'),
  ...readdirSync(usecases).filter((name) => name !== 'sdk').map((name) => join(usecases, name, 'tests')).filter((dir) => existsSync(dir)),
];

test('the SDK and use case pytest suites pass', async (t) => {
  const result = await runPython(['-m', 'pytest', '-p', 'no:cacheprovider', '--import-mode=importlib', '-c', join(usecases, 'sdk', 'pytest.ini'), '--rootdir', usecases, ...suites]);
  const summary = result.stdout.trim().split('\n').at(-1) ?? '';
  t.log(summary);
  t.is(result.code, 0, `${result.stdout}\n${result.stderr.slice(-3000)}`);
  t.regex(summary, /\d+ passed/);
  t.notRegex(summary, /failed|error/);
});
