/**
 * A job is its whole process tree. kill -9 of the pid `diamond status` shows (the group's
 * leader only) leaves the JVM and the Python driver running; the orchestrator stops them
 * before it restarts the job, so there is never more than one copy, and `diamond down`
 * (job-shutdown) leaves no process carrying a launch marker, even one whose leader was
 * killed. An orphan launch the record does not name (a crash between spawn and record) is
 * stopped at orchestrator start-up; the record's own launch is adopted. Real Spark; serial.
 */
import test from 'ava';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../shared/logger.ts';
import { startDetached } from '../../shared/process-group.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { JobLauncher, type MarkedProcess } from '../../infra/orchestrator/launcher.ts';
import { jobIdFor, launchIdOf } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { createRedis } from '../../shared/redis.ts';
import { stopJobs } from '../../infra/platform/job-shutdown.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';

const isJvm = (p: MarkedProcess): boolean => p.cmdline.includes('org.apache.spark.deploy.SparkSubmit');
const isDriver = (p: MarkedProcess): boolean => !isJvm(p) && !p.cmdline.startsWith('/bin/sh') && p.cmdline.includes('launch_job.py');

function launcherOf(o: TestOrchestrator): JobLauncher {
  return new JobLauncher(o.config, o.options.topics, { jobs: o.options.jobsDir, checkpoints: o.options.checkpointsDir });
}

/** The job's marked processes, per launch: how many JVMs and Python drivers each has. */
function trees(launcher: JobLauncher, jobId: string): Map<string, { jvms: number; drivers: number }> {
  const byLaunch = new Map<string, { jvms: number; drivers: number }>();
  for (const p of launcher.jobProcesses().filter((found) => found.jobId === jobId)) {
    const tree = byLaunch.get(p.launchId) ?? { jvms: 0, drivers: 0 };
    byLaunch.set(p.launchId, { jvms: tree.jvms + (isJvm(p) ? 1 : 0), drivers: tree.drivers + (isDriver(p) ? 1 : 0) });
  }
  return byLaunch;
}

/** Waits until the launch's JVM and driver are both up (the driver pid file is written late). */
async function waitForTree(launcher: JobLauncher, jobId: string, launchId: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const tree = trees(launcher, jobId).get(launchId);
    if (tree && tree.jvms === 1 && tree.drivers === 1) return;
    await sleep(200);
  }
  throw new Error(`launch ${launchId} of ${jobId} never had its JVM and driver: ${JSON.stringify([...trees(launcher, jobId)])}`);
}

async function deployDataQuality(o: TestOrchestrator): Promise<string> {
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('r-1', 'c1', { amount: -1 })]);
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix);
  return jobId;
}

test.serial('kill -9 of the group leader: the rest of the group is stopped before the restart; down leaves no job process', async (t) => {
  const o = await startTestOrchestrator('orch-tree', { DIAMOND_ORCHESTRATOR_REAP_GRACE: '3s' });
  t.teardown(() => o.teardown());
  const launcher = launcherOf(o);
  const jobId = await deployDataQuality(o);
  const running = await o.waitForJob(jobId, (r) => r.state === 'running');
  const first = running.current!;
  await waitForTree(launcher, jobId, launchIdOf(first));

  // Watch the job's trees while it restarts: two launches must never be alive together.
  let overlap: string | null = null;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const alive = trees(launcher, jobId);
      if (alive.size > 1) overlap ??= JSON.stringify([...alive]);
      await sleep(100);
    }
  })();

  process.kill(first.groupPid, 'SIGKILL'); // the leader only, as `kill -9 <pid from status>` does
  const restarted = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current !== null && launchIdOf(r.current) !== launchIdOf(first));
  await waitForTree(launcher, jobId, launchIdOf(restarted.current!));
  watching = false;
  await watcher;
  t.is(overlap, null, 'the old launch was gone before the new one started');
  t.deepEqual([...trees(launcher, jobId)], [[launchIdOf(restarted.current!), { jvms: 1, drivers: 1 }]], 'exactly one process tree for the job');

  // `diamond down` after the orchestrator stopped, with the new leader killed too: nothing is left.
  await o.reconciler.stop();
  process.kill(restarted.current!.groupPid, 'SIGKILL');
  const log = createLogger(o.config, { fd: 2 });
  await stopJobs(o.config, o.options, log, { graceMs: 10_000 });
  t.deepEqual(launcher.jobProcesses(), [], 'down left no process carrying a launch marker');
  const store = new DeploymentStore(createRedis(o.config, { keyPrefix: o.options.keyPrefix }));
  const record = await store.getJob(jobId);
  await store.close();
  t.is(record?.state, 'stopped');
  t.is(record?.current, null);
});

test.serial('an orphan launch no record names is stopped at orchestrator start-up; the recorded launch is adopted', async (t) => {
  const o = await startTestOrchestrator('orch-orphan', { DIAMOND_ORCHESTRATOR_REAP_GRACE: '1s' });
  t.teardown(() => o.teardown());
  const launcher = launcherOf(o);
  const jobId = await deployDataQuality(o);
  const running = await o.waitForJob(jobId, (r) => r.state === 'running');
  await waitForTree(launcher, jobId, launchIdOf(running.current!));

  // The orchestrator stops (its jobs keep running); a launch happened whose record was never
  // written: a "driver" with the job's marker that even ignores SIGTERM.
  await o.reconciler.stop();
  const orphanLaunch = JobLauncher.newLaunchId('orphan');
  const marker = join(o.options.jobsDir, jobId, `${orphanLaunch}.driver.pid`);
  const python = 'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)';
  startDetached({ command: 'python3', args: ['-c', python, 'launch_job.py', '--pid-file', marker], logFile: join(o.options.jobsDir, 'orphan.log'), pidFile: join(o.options.jobsDir, 'orphan.pid'), marker });
  const deadline = Date.now() + 10_000;
  while (!trees(launcher, jobId).has(orphanLaunch)) {
    if (Date.now() > deadline) throw new Error('the orphan never showed up under /proc');
    await sleep(100);
  }

  await o.restartOrchestrator();
  const gone = Date.now() + 60_000;
  while (trees(launcher, jobId).has(orphanLaunch)) {
    if (Date.now() > gone) throw new Error('the orphan launch was not stopped within 60 s of the orchestrator start');
    await sleep(200);
  }
  const after = await o.reconciler.store.getJob(jobId);
  t.is(launchIdOf(after!.current!), launchIdOf(running.current!), 'the recorded launch was adopted, not restarted');
  t.is(after!.restarts, 0);
  t.deepEqual([...trees(launcher, jobId)], [[launchIdOf(running.current!), { jvms: 1, drivers: 1 }]], 'only one copy runs');
});
