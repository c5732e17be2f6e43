/**
 * JobLauncher.requestStop on real process groups shaped like a launch: a shell leads the
 * group, runs the "driver" (which writes its pid to the pid file, the launch's marker, as
 * the runner does) and records its exit code when it ends. No Spark: shells stand in.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, startDetached } from '../../shared/process-group.ts';
import { config } from '../../test/support/env.ts';
import { JobLauncher } from './launcher.ts';

const topics = { input: 'unused', output: 'unused', rejected: 'unused', progress: 'unused' };

/** A launch whose driver runs `driverScript` (its pid goes to the pid file first), then `afterDriver`, then records the exit code. */
function launch(driverScript: string, afterDriver = 'true'): { launcher: JobLauncher; job: { groupPid: number; marker: string; driverPidFile: string; exitFile: string } } {
  const dir = mkdtempSync(join(tmpdir(), 'diamond-launcher-'));
  const driverPidFile = join(dir, 'launch.driver.pid');
  const exitFile = join(dir, 'launch.exit');
  const driver = `echo $$ > "$1"; ${driverScript}`;
  const record = startDetached({
    command: '/bin/sh',
    args: ['-c', `sh -c '${driver}' driver "$1"; code=$?; ${afterDriver}; echo $code > "$0"`, exitFile, driverPidFile],
    logFile: join(dir, 'launch.log'), pidFile: join(dir, 'launch.group.pid'), marker: driverPidFile,
  });
  return { launcher: new JobLauncher(config, topics, { jobs: dir, checkpoints: dir }), job: { groupPid: record.pid, marker: driverPidFile, driverPidFile, exitFile } };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await sleep(50);
  }
  throw new Error(`never: ${what}`);
}

const driverOf = (job: { driverPidFile: string }): number | null => (existsSync(job.driverPidFile) && readFileSync(job.driverPidFile, 'utf8').trim() !== '' ? Number(readFileSync(job.driverPidFile, 'utf8')) : null);

test('requestStop signals the running driver, which exits 0; the group leader records it', async (t) => {
  const { launcher, job } = launch('trap "exit 0" TERM; while :; do sleep 0.05; done');
  await until(() => driverOf(job) !== null, 'the driver wrote its pid');
  launcher.requestStop(job);
  await until(() => !isAlive(job.groupPid), 'the launch ended');
  t.is(launcher.exitCode(job), 0);
});

test('requestStop after the driver exited signals nothing: the group leader still records the exit code', async (t) => {
  // The driver is gone (it stopped at a handover) while the rest of the launch winds down
  // (the JVM): a second stop request must not kill the shell that writes the exit code.
  const { launcher, job } = launch('exit 0', 'sleep 1');
  await until(() => { const pid = driverOf(job); return pid !== null && !isAlive(pid); }, 'the driver exited');
  launcher.requestStop(job);
  await until(() => !isAlive(job.groupPid), 'the launch ended');
  t.is(launcher.exitCode(job), 0, 'exit code recorded: a graceful stop, not a kill');
});

test('requestStop never signals a process that reused the driver pid (its command line lacks the marker)', async (t) => {
  const { launcher, job } = launch('exit 0', 'sleep 1');
  await until(() => { const pid = driverOf(job); return pid !== null && !isAlive(pid); }, 'the driver exited');
  const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => { stranger.kill('SIGKILL'); });
  writeFileSync(job.driverPidFile, String(stranger.pid));
  launcher.requestStop(job);
  await until(() => !isAlive(job.groupPid), 'the launch ended');
  t.is(stranger.exitCode, null);
  t.is(stranger.signalCode, null, 'the unrelated process was not signalled');
});
