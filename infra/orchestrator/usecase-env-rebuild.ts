/**
 * Rebuilds a deployed use case's Python environment that vanished from the cache since the
 * deploy. The launcher runs it inside the job's process group, before spark-submit, so the
 * reconcile loop never waits for pip; its lines go to the job's log (JSON, like the
 * runner's, so `diamond status` shows the error). Exit 1 when it cannot be rebuilt.
 *
 *   node --import tsx infra/orchestrator/usecase-env-rebuild.ts <folder> <env dir> <cache dir> <spark master> [<job user>]
 */
import { loadConfig } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import { prepareUsecaseEnv, usecaseEnvLocation } from './usecase-env.ts';

function say(level: 'info' | 'error', msg: string): void {
  process.stdout.write(JSON.stringify({ level, time: Date.now(), msg }) + '\n');
}

const [folder, expected, cacheDir, master, user] = process.argv.slice(2);
if (!folder || !expected || !cacheDir || !master) {
  say('error', 'usage: usecase-env-rebuild.ts <folder> <env dir> <cache dir> <spark master>');
  process.exit(1);
}
try {
  const config = loadConfig({ ...process.env, DIAMOND_CACHE_DIR: cacheDir, DIAMOND_SPARK_MASTER: master, ...(user ? { DIAMOND_JOB_USER: user } : {}) });
  // The environment is keyed by the requirements: if they changed since the deploy, this is
  // not the environment the deploy validated, and the folder is a new version anyway.
  const location = usecaseEnvLocation(config, folder);
  if (location?.dir !== expected) {
    say('error', `the requirements.txt of ${folder} changed since it was deployed (its environment would be ${location?.dir ?? 'none'}, not ${expected}); deploy it again`);
    process.exit(1);
  }
  const started = Date.now();
  await prepareUsecaseEnv(config, folder, (step) => say('info', step));
  say('info', `rebuilt the Python environment ${expected} in ${Date.now() - started} ms`);
} catch (error) {
  say('error', errorMessage(error));
  process.exit(1);
}
