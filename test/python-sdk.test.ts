/** Runs the Python SDK's pytest suite in the platform virtualenv as part of `npm test`. */
import test from 'ava';
import { join } from 'node:path';
import { config } from './support/env.ts';
import { runPython } from './support/python.ts';

test('the Python SDK pytest suite passes', async (t) => {
  const sdk = join(config.projectRoot, 'usecases', 'sdk');
  const result = await runPython(['-m', 'pytest', '-p', 'no:cacheprovider', '-c', join(sdk, 'pytest.ini'), '--rootdir', sdk, join(sdk, 'tests')]);
  t.log(result.stdout.trim().split('\n').at(-1) ?? '');
  t.is(result.code, 0, `${result.stdout}\n${result.stderr}`);
  t.regex(result.stdout, /\d+ passed/);
});
