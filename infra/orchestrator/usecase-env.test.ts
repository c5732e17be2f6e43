import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../shared/config.ts';
import { pythonEnvironment, sparkSubmit } from '../../shared/runtime-paths.ts';
import {
  ARCHIVE_ALIAS, failedRequirement, isClusterMaster, normalizeRequirements, packPackages, platformPins, readRequirements,
  usecaseEnvAt, usecaseEnvHash, usecaseEnvLocation, usecaseSparkSettings,
} from './usecase-env.ts';

const execFileAsync = promisify(execFile);
const config = loadConfig(process.env);

function folderWith(requirements: string | null): string {
  const folder = mkdtempSync(join(tmpdir(), 'diamond-uc-env-'));
  if (requirements !== null) writeFileSync(join(folder, 'requirements.txt'), requirements);
  return folder;
}

test('requirements are normalized: comments, blank lines and spacing do not count, order does', (t) => {
  const text = '# header\n\nhumanize==4.12.1   # pinned\n  tabulate ==0.9.0\n--index-url https://example.org/simple \\\n  --trusted-host example.org\npkg @ https://x.org/pkg.zip#egg=pkg\n';
  t.deepEqual(normalizeRequirements(text), ['humanize==4.12.1', 'tabulate ==0.9.0', '--index-url https://example.org/simple --trusted-host example.org', 'pkg @ https://x.org/pkg.zip#egg=pkg']);
  t.deepEqual(normalizeRequirements('# only a comment\n\n'), []);
});

test('same requirements on the same platform → same hash; any other pin, Python or platform → another', (t) => {
  const hash = usecaseEnvHash(['humanize==4.12.1'], '3.11.7', 'venv-abc');
  t.regex(hash, /^[0-9a-f]{16}$/);
  t.is(usecaseEnvHash(['humanize==4.12.1'], '3.11.7', 'venv-abc'), hash);
  t.not(usecaseEnvHash(['humanize==4.12.0'], '3.11.7', 'venv-abc'), hash);
  t.not(usecaseEnvHash(['humanize==4.12.1'], '3.12.1', 'venv-abc'), hash);
  t.not(usecaseEnvHash(['humanize==4.12.1'], '3.11.7', 'venv-def'), hash);
});

test('a folder without requirements needs no environment; comment changes keep the same one', (t) => {
  t.is(usecaseEnvLocation(config, folderWith(null)), null);
  t.is(usecaseEnvLocation(config, folderWith('# nothing yet\n\n')), null);
  const a = usecaseEnvLocation(config, folderWith('humanize==4.12.1\n'));
  const b = usecaseEnvLocation(config, folderWith('# for messages\nhumanize==4.12.1    # small, pure Python\n\n'));
  const c = usecaseEnvLocation(config, folderWith('humanize==4.11.0\n'));
  t.truthy(a);
  t.is(a?.dir, join(config.cacheDir, 'usecase-envs', a!.hash));
  t.is(b?.dir, a?.dir);
  t.not(c?.dir, a?.dir);
  t.deepEqual(readRequirements(folderWith('x==1 # c\n')), ['x==1']);
});

test('pip failures point at the requirement line, matched by package name', (t) => {
  const requirements = ['humanize==99.0.0', 'tabulate==0.9.0'];
  t.is(failedRequirement('ERROR: Could not find a version that satisfies the requirement humanize==99.0.0 (from versions: 0.1)\nERROR: No matching distribution found for humanize==99.0.0\n', requirements), 'humanize==99.0.0');
  t.is(failedRequirement("ERROR: Invalid requirement: 'Tabulate=0.9.0'", ['Tabulate=0.9.0']), 'Tabulate=0.9.0');
  t.is(failedRequirement('ERROR: No matching distribution found for Tab_ulate', ['tab-ulate==1']), 'tab-ulate==1');
  t.is(failedRequirement('network unreachable', requirements), null);
});

test("the platform's pins are what a use case may not replace", (t) => {
  t.deepEqual([...platformPins('# c\npyspark==4.0.0\nfastavro==1.13.1 ; python_version > "3"\nloose>=1\n')], [['pyspark', '4.0.0'], ['fastavro', '1.13.1']]);
});

test('local master: the job runs the environment\'s interpreter; nothing is shipped', (t) => {
  t.false(isClusterMaster('local[2]'));
  t.false(isClusterMaster('local'));
  const env = usecaseEnvAt(config, '/cache/usecase-envs/abc');
  t.deepEqual(env, { python: '/cache/usecase-envs/abc/bin/python', dir: '/cache/usecase-envs/abc', hash: 'abc' });
  const settings = usecaseSparkSettings(env, 'local[2]');
  t.deepEqual(settings, { env: { PYSPARK_PYTHON: env.python, PYSPARK_DRIVER_PYTHON: env.python }, archives: [], conf: {} });
  const submit = sparkSubmit(config, 'job.py', [], settings.conf, settings);
  t.false(submit.args.includes('--archives'));
  t.is(submit.env['PYSPARK_PYTHON'], env.python);
  t.is(sparkSubmit(config, 'job.py').env['PYSPARK_PYTHON'], pythonEnvironment(config).python, 'other jobs keep the platform interpreter');
});

test('cluster master: the driver runs the environment, executors get its packages as an archive on PYTHONPATH', (t) => {
  const cluster = loadConfig({ ...process.env, DIAMOND_SPARK_MASTER: 'spark://spark-master:7077' });
  t.true(isClusterMaster(cluster.spark.master));
  const env = usecaseEnvAt(cluster, '/cache/usecase-envs/abc');
  t.is(env.archive, '/cache/usecase-envs/abc/usecase-packages.zip');
  const settings = usecaseSparkSettings(env, cluster.spark.master);
  t.deepEqual(settings, {
    env: { PYSPARK_DRIVER_PYTHON: env.python },
    archives: [`/cache/usecase-envs/abc/usecase-packages.zip#${ARCHIVE_ALIAS}`],
    conf: { 'spark.executorEnv.PYTHONPATH': ARCHIVE_ALIAS },
  });
  const submit = sparkSubmit(cluster, 'job.py', ['--x'], { 'spark.app.name': 'j', ...settings.conf }, settings);
  const at = submit.args.indexOf('--archives');
  t.is(submit.args[at + 1], `/cache/usecase-envs/abc/usecase-packages.zip#${ARCHIVE_ALIAS}`);
  t.true(submit.args.includes(`spark.executorEnv.PYTHONPATH=${ARCHIVE_ALIAS}:${join(cluster.projectRoot, 'usecases', 'sdk')}`), 'the archive first, then the SDK');
  t.true(submit.args.includes(`spark.cores.max=${cluster.spark.executorCores}`), 'one executor, capped: an application cannot take the whole cluster');
  t.true(at < submit.args.indexOf('job.py'), 'options come before the script');
  t.deepEqual(submit.args.slice(-2), ['job.py', '--x']);
  t.is(submit.env['PYSPARK_DRIVER_PYTHON'], env.python);
  t.is(submit.env['PYSPARK_PYTHON'], pythonEnvironment(cluster).python, "executors keep the cluster's interpreter");
  t.throws(() => usecaseSparkSettings({ ...env, archive: undefined }, cluster.spark.master), { message: /no archive/ });
});

test("packing zips the use case's own packages at the archive root, without byte code or the link to the platform", async (t) => {
  const site = mkdtempSync(join(tmpdir(), 'diamond-site-'));
  mkdirSync(join(site, 'humanize', '__pycache__'), { recursive: true });
  mkdirSync(join(site, 'humanize-4.12.1.dist-info'));
  writeFileSync(join(site, 'humanize', '__init__.py'), 'VERSION = 1\n');
  writeFileSync(join(site, 'humanize', '__pycache__', '__init__.cpython-311.pyc'), 'x');
  writeFileSync(join(site, 'humanize-4.12.1.dist-info', 'METADATA'), 'Name: humanize\n');
  writeFileSync(join(site, '_diamond_platform.pth'), '/platform/site-packages\n');
  const archive = join(site, '..', `${site.split('/').at(-1)}.zip`);
  const python = pythonEnvironment(config).python;
  await packPackages(python, site, archive, { config, logFile: join(site, '..', 'pack.log') });
  const { stdout } = await execFileAsync(python, ['-c', 'import json, sys, zipfile; print(json.dumps(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))', archive]);
  t.deepEqual(JSON.parse(stdout), ['humanize-4.12.1.dist-info/METADATA', 'humanize/__init__.py']);
});

test('the rebuild step refuses when the requirements changed since the deploy', async (t) => {
  const folder = folderWith('humanize==4.12.1\n');
  const script = join(config.projectRoot, 'infra', 'orchestrator', 'usecase-env-rebuild.ts');
  const error = await execFileAsync(process.execPath, ['--import', 'tsx', script, folder, '/elsewhere/usecase-envs/0000', config.cacheDir, 'local[2]'], { cwd: config.projectRoot })
    .then(() => null, (e: unknown) => e as { code: number; stdout: string });
  t.is(error?.code, 1);
  const line = JSON.parse(error!.stdout.trim().split('\n').at(-1)!) as { level: string; msg: string };
  t.is(line.level, 'error');
  t.regex(line.msg, /changed since it was deployed .* deploy it again/);
});
