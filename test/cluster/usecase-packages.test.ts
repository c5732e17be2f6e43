/**
 * A use case's own Python packages on the Spark standalone cluster (DIAMOND_TOPOLOGY=cluster):
 * with_requirements' per-record feedback() imports `humanize`, which only its requirements.txt
 * has. Its per-record function runs in the executors' Python workers, on the workers, so its
 * feedback carrying humanize's output shows the package reached them; the executor's own
 * environment and folder in /proc show how: PYTHONPATH names the archive shipped with
 * `--archives`, and the executor's working folder holds the unpacked package.
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { pythonEnvironment } from '../../shared/runtime-paths.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { ARCHIVE_ALIAS } from '../../infra/orchestrator/usecase-env.ts';
import { config, consumeAll, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

if (config.topology !== 'cluster') {
  throw new Error('test/cluster needs the cluster topology: run `npm run test:cluster` (DIAMOND_TOPOLOGY=cluster)');
}

const kafka = testKafka();
const fixtures = join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases');

interface Executor { pid: number; cwd: string; pythonPath: string; appId: string }

/** Spark executors running on this machine's workers, read from /proc. */
function executors(): Executor[] {
  const found: Executor[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!argv.some((arg) => arg.endsWith('CoarseGrainedExecutorBackend'))) continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const pythonPath = env.find((line) => line.startsWith('PYTHONPATH='))?.slice('PYTHONPATH='.length) ?? '';
      found.push({ pid: Number(entry), cwd: readlinkSync(`/proc/${entry}/cwd`), pythonPath, appId: argv[argv.indexOf('--app-id') + 1] ?? '' });
    } catch {
      // the process ended while it was read
    }
  }
  return found;
}

test('a use case with its own requirements on the cluster: its packages reach the executors through --archives', async (t) => {
  const o = await startTestOrchestrator('cl-pkgs');
  t.teardown(() => o.teardown());
  t.regex(o.config.spark.master, /^spark:\/\//);
  const platform = pythonEnvironment(o.config).python;
  const platformHas = await promisify(execFile)(platform, ['-c', 'import humanize'], { timeout: 60_000 }).then(() => true, () => false);
  t.false(platformHas, "the platform's interpreter, which the executors run, does not have humanize");

  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'with_requirements', variant: 'A', folder: join(fixtures, 'with_requirements') }, o.options.jobPrefix);
  await o.produce([customerRecord('p-1', 'c1', { amount: 1234567 }), customerRecord('p-2', 'c2', { amount: 42 })]);
  const jobId = jobIdFor('with_requirements', 'A', o.options.jobPrefix);
  await o.waitForJob(jobId, (r) => r.state === 'running');
  const registry = createRegistry(o.config);
  const feedback = await Promise.all((await consumeAll(kafka, o.options.topics.output, 2, 180_000)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  t.deepEqual(feedback.map((f) => f.message).sort(), ['p-1: 1,234,567 EUR', 'p-2: 42 EUR'], 'humanize ran in the executors');
  t.deepEqual(feedback.map((f) => f.details['humanize']), ['4.12.1', '4.12.1']);

  // How: the executor of this job (the only application with the archive) names it first on
  // its PYTHONPATH, and holds it unpacked in its working folder on the worker.
  const running = executors();
  t.log(`executors on the workers: ${JSON.stringify(running.map((e) => ({ pid: e.pid, appId: e.appId, cwd: e.cwd })))}`);
  const shipped = running.filter((e) => e.pythonPath.split(':')[0] === ARCHIVE_ALIAS);
  t.is(shipped.length, 1, 'one executor, the job\'s, has the use case\'s archive on its PYTHONPATH');
  t.regex(shipped[0]?.cwd ?? '', /spark-workers\/spark-worker-\d+\//, 'it runs in a worker\'s folder');
  t.true(existsSync(join(shipped[0]!.cwd, ARCHIVE_ALIAS, 'humanize')), 'the archive is unpacked there with humanize in it');
});
