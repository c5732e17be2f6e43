import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { config } from '../../test/support/env.ts';
import { runPython } from '../../test/support/python.ts';
import { codeVersion } from './version.ts';

async function pythonVersion(folder: string): Promise<string> {
  const result = await runPython(['-c', 'import sys; from diamond_sdk._runtime.version import code_version; print(code_version(sys.argv[1]))', folder]);
  if (result.code !== 0) throw new Error(result.stderr);
  return result.stdout.trim();
}

test('the TS code version equals the SDK one for the example use cases', async (t) => {
  for (const name of ['data_quality', 'spending_spike']) {
    const folder = join(config.projectRoot, 'usecases', name);
    t.is(codeVersion(folder), await pythonVersion(folder), name);
  }
});

test('the TS code version equals the SDK one with nested folders, skipped files and odd names', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'diamond-version-'));
  mkdirSync(join(folder, 'lib', 'sub'), { recursive: true });
  mkdirSync(join(folder, 'tests'));
  mkdirSync(join(folder, '__pycache__'));
  writeFileSync(join(folder, 'job.py'), 'x = 1\n');
  writeFileSync(join(folder, 'lib', 'a.py'), 'a');
  writeFileSync(join(folder, 'lib', 'sub', 'b.txt'), 'b');
  writeFileSync(join(folder, 'lib-x.py'), 'dash sorts before slash by code point');
  writeFileSync(join(folder, 'Zed.yaml'), 'z');
  writeFileSync(join(folder, 'sample.jsonl'), '{}');
  writeFileSync(join(folder, 'tests', 'test_job.py'), 'pass');
  writeFileSync(join(folder, '__pycache__', 'job.cpython.pyc'), 'x');
  const before = codeVersion(folder);
  t.is(before, await pythonVersion(folder));
  writeFileSync(join(folder, 'tests', 'test_job.py'), 'changed tests do not change the version');
  t.is(codeVersion(folder), before);
  writeFileSync(join(folder, 'job.py'), 'x = 2\n');
  t.not(codeVersion(folder), before);
  t.is(codeVersion(folder), await pythonVersion(folder));
});
