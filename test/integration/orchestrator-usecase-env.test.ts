/**
 * Per-use-case Python environments and the output checks before a deploy, on the real
 * registry, Redis, Kafka, PyPI and Spark: a use case whose output misses or mistypes a
 * Feedback column is refused naming it; the SDK's contract is checked against the Feedback
 * schema registered under the feedback subject; requirements pip cannot install refuse the
 * deploy naming the line and pip's log; and a use case whose code imports a package only its
 * requirements.txt has runs in its own environment (the platform's cannot import it), and
 * runs again after that environment vanished from the cache (rebuilt before the job starts).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { createRedis } from '../../shared/redis.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { readSchema, type Feedback } from '../../shared/schemas.ts';
import { isBuilt } from '../../shared/install-cache.ts';
import { pythonEnvironment } from '../../shared/runtime-paths.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { validateUsecase } from '../../infra/orchestrator/validation.ts';
import { consumeAll, consumeUntil, config, testKafka, uniqueName } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

const execFileAsync = promisify(execFile);
const fixtures = join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases');
const kafka = testKafka();

async function imports(python: string, code: string): Promise<boolean> {
  return execFileAsync(python, ['-c', code], { timeout: 60_000 }).then(() => true, () => false);
}

test.serial('a use case whose output misses or mistypes a Feedback column is refused, naming the use case and the column', async (t) => {
  const store = new DeploymentStore(createRedis(config, { keyPrefix: `${uniqueName('test-ucenv')}:` }));
  t.teardown(() => store.close());
  const folder = join(fixtures, 'bad_output');
  const started = Date.now();
  const spark = await t.throwsAsync(deployUsecase(config, store, null, { usecase: 'bad_output', variant: 'A', folder }));
  t.log(`PySpark variant refused in ${Date.now() - started} ms`);
  t.is((spark as { code?: string }).code, 'DIAMOND_USECASE_OUTPUT_INVALID');
  t.regex(spark.message, /use case 'bad_output' output column 'severity' is missing; return it as string/);
  t.regex((spark as { hint?: string }).hint ?? '', /return column 'severity'.*npx diamond usecase test bad_output/);

  const perRecord = await t.throwsAsync(deployUsecase(config, store, null, { usecase: 'bad_output', variant: 'B', folder }));
  t.regex(perRecord.message, /use case 'bad_output' output column 'message' is float; expected string/);
  t.deepEqual(await store.listDeployments(), [], 'nothing was recorded');
});

test.serial('the SDK output contract is checked against the Feedback schema registered under the feedback subject', async (t) => {
  const registry = createRegistry(config);
  const folder = join(fixtures, 'with_requirements');
  const fits = uniqueName('ucenv-feedback-value');
  await registerContract(registry, 'Feedback', fits);
  const validated = await validateUsecase(config, folder, 'A', { feedbackSubject: fits });
  t.is(validated.report.registryVersion, 1);
  t.log(`with_requirements validated in ${validated.report.totalMs} ms (environment ${validated.report.envMs} ms, checks ${validated.report.pythonMs} ms, sample ${validated.report.sample})`);

  const misfit = uniqueName('ucenv-feedback-value');
  const schema = readSchema('Feedback');
  const changed = { ...schema, fields: schema.fields.map((f) => (f.name === 'score' ? { ...f, type: ['null', 'string'] } : f)) };
  await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(changed) }, { subject: misfit });
  const error = await t.throwsAsync(validateUsecase(config, folder, 'A', { feedbackSubject: misfit }));
  t.is((error as { code?: string }).code, 'DIAMOND_FEEDBACK_SCHEMA_INCOMPATIBLE');
  t.regex(error.message, new RegExp(`does not fit ${misfit} version 1 in the registry: field 'score' is \\[null, double\\] in the SDK but \\[null, string\\] in the registry`));
});

test.serial('requirements pip cannot install refuse the deploy, naming the use case, the requirement and the pip log', async (t) => {
  const folder = join(mkdtempSync(join(tmpdir(), 'diamond-ucenv-')), 'with_requirements');
  cpSync(join(fixtures, 'with_requirements'), folder, { recursive: true });
  writeFileSync(join(folder, 'requirements.txt'), '# a version that does not exist\nhumanize==99.0.0\n');
  const error = await t.throwsAsync(validateUsecase(config, folder, 'A'));
  t.is((error as { code?: string }).code, 'DIAMOND_USECASE_ENV_FAILED');
  t.regex(error.message, /Python environment of use case 'with_requirements': requirement 'humanize==99.0.0' cannot be installed/);
  const log = /pip's log: (\S+)/.exec((error as { hint?: string }).hint ?? '')?.[1];
  t.truthy(log && existsSync(log), 'the hint names an existing pip log');
  t.regex(readFileSync(log!, 'utf8'), /No matching distribution found for humanize==99.0.0/);
});

test.serial('a use case with requirements runs in its own environment, and again after it vanished from the cache', async (t) => {
  const o = await startTestOrchestrator('ucenv');
  t.teardown(() => o.teardown());
  const registry = createRegistry(o.config);
  const platform = pythonEnvironment(o.config).python;
  t.false(await imports(platform, 'import humanize'), "the platform's environment does not have humanize");

  const started = Date.now();
  const deployment = await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'with_requirements', variant: 'A', folder: join(fixtures, 'with_requirements') }, o.options.jobPrefix);
  t.log(`deploy (environment cached) took ${Date.now() - started} ms`);
  const envDir = deployment.pythonEnv!;
  t.true(envDir.startsWith(join(o.config.cacheDir, 'usecase-envs')));
  const python = join(envDir, 'bin', 'python');
  t.true(await imports(python, 'import humanize, pyspark, fastavro; assert pyspark.__version__ == "4.2.0"'), 'the environment imports its package and the platform\'s');
  t.false(await imports(platform, 'import humanize'), 'and the platform\'s still does not');

  const jobId = jobIdFor('with_requirements', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('a-1', 'c1', { amount: 1234567 }), customerRecord('a-2', 'c2', { amount: 42 }), customerRecord('a-3', 'c3', { amount: null, type: 'login' })]);
  const running = await o.waitForJob(jobId, (r) => r.state === 'running');
  const driver = Number(readFileSync(running.current!.driverPidFile, 'utf8'));
  const environ = readFileSync(`/proc/${driver}/environ`, 'utf8').split('\0');
  t.true(environ.includes(`PYSPARK_PYTHON=${python}`), 'the job runs the use case\'s interpreter');
  const first = await Promise.all((await consumeAll(kafka, o.options.topics.output, 2, 120_000)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  t.deepEqual(first.map((f) => f.message).sort(), ['a-1: 1,234,567 EUR', 'a-2: 42 EUR']);
  t.deepEqual(first.map((f) => f.details['humanize']), ['4.12.1', '4.12.1']);

  // The cache is cleared under a deployed job; kill -9 it: the restart rebuilds the environment first.
  const killed = running.current!;
  process.kill(-killed.groupPid, 'SIGKILL');
  rmSync(envDir, { recursive: true, force: true });
  await o.produce([customerRecord('b-1', 'c9', { amount: 2000 })]);
  const restarted = await o.waitForJob(jobId, (r) => r.restarts === 1 && r.state === 'running' && r.current?.groupPid !== killed.groupPid);
  const all = await Promise.all((await consumeUntil(kafka, o.options.topics.output, (m) => m.some((x) => x.key === 'c9'), 120_000)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  t.true(all.some((f) => f.message === 'b-1: 2,000 EUR'));
  t.true(isBuilt(envDir), 'the environment is back in the cache');
  const log = readFileSync(restarted.current!.logFile, 'utf8');
  t.regex(log, /is gone from the cache; rebuilding it before the job starts/);
  const rebuilt = /rebuilt the Python environment \S+ in (\d+) ms/.exec(log);
  t.truthy(rebuilt);
  t.log(`vanished environment rebuilt in ${rebuilt?.[1]} ms inside the job's process group`);
});
