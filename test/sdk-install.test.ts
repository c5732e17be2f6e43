/**
 * The SDK as a package: `pip install -e usecases/sdk` into a fresh virtualenv (as a data
 * scientist's IDE or notebook would) installs it with the platform's pins, read from
 * usecases/sdk/requirements.txt (pyproject.toml lists no version of its own), and that
 * virtualenv's python, activated and without PYTHONPATH, passes a shipped use case's tests.
 * pip's cache serves PySpark's wheel (built once from its sdist); the rest downloads.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectorJars, pythonRequirementsFile } from '../shared/runtime-paths.ts';
import { normalizeRequirements } from '../infra/orchestrator/usecase-env.ts';
import { config } from './support/env.ts';

const run = promisify(execFile);
const sdk = join(config.projectRoot, 'usecases', 'sdk');

test('a fresh virtualenv installs the SDK with the platform\'s pins and runs data_quality\'s tests', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'diamond-sdk-venv-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const venv = join(dir, 'venv');
  await run('python3', ['-m', 'venv', venv], { timeout: 120_000 });
  const python = join(venv, 'bin', 'python');
  // What `source venv/bin/activate` gives, plus Java for Spark; nothing that points at the platform's virtualenv.
  const env = {
    PATH: `${join(venv, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, VIRTUAL_ENV: venv, HOME: process.env['HOME'] ?? dir,
    JAVA_HOME: config.javaHome, DIAMOND_SPARK_JARS: connectorJars(config).join(','),
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => /^PIP_|^https?_proxy$|^HTTPS?_PROXY$|^NO_PROXY$/i.test(name))),
  };
  const pip = await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-e', sdk], { env, timeout: 540_000, maxBuffer: 16 * 1024 * 1024 })
    .catch((error: unknown) => { throw new Error(`pip install -e usecases/sdk failed: ${String((error as { stderr?: string }).stderr ?? error)}`); });
  t.log(pip.stderr.trim().split('\n').slice(-3).join('\n'));

  const probe = [
    'import importlib.metadata as m, importlib.resources as r, json, diamond_sdk, pyspark',
    'print(json.dumps({"file": diamond_sdk.__file__, "requires": m.requires("diamond-sdk"), "pyspark": pyspark.__version__, "typed": (r.files("diamond_sdk") / "py.typed").is_file()}))',
  ].join('\n');
  const installed = JSON.parse((await run(python, ['-c', probe], { env, cwd: dir })).stdout) as { file: string; requires: string[]; pyspark: string; typed: boolean };
  t.is(installed.file, join(sdk, 'diamond_sdk', '__init__.py'), 'the editable SDK of this checkout, found without PYTHONPATH');
  t.true(installed.typed, 'py.typed: type checkers read its annotations');
  const pins = normalizeRequirements(readFileSync(pythonRequirementsFile(config), 'utf8'));
  t.deepEqual(installed.requires, pins, 'the dependencies are requirements.txt, pin for pin');
  t.true(pins.includes(`pyspark==${installed.pyspark}`), `pyspark ${installed.pyspark} installed; pinned: ${pins.join(', ')}`);

  const tests = join(config.projectRoot, 'usecases', 'data_quality', 'tests');
  const pytest = await run(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--import-mode=importlib', '--rootdir', join(config.projectRoot, 'usecases'), tests], { env, cwd: dir, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 })
    .catch((error: unknown) => { throw new Error(`data_quality's tests failed in the fresh virtualenv:\n${String((error as { stdout?: string }).stdout ?? error)}`); });
  const summary = pytest.stdout.trim().split('\n').at(-1) ?? '';
  t.log(summary);
  t.regex(summary, /^\d+ passed/);
});
