/**
 * JobLauncher: starts one use case job as its own spark-submit process group, with its own
 * log file under `config.home` (kept after it ends), and observes and stops it. Everything
 * it needs to find the process again (group pid, a marker in its command line, the driver's
 * pid file, the exit-code file) goes into the JobProcess stored in Redis, so a restarted
 * orchestrator can adopt the job instead of starting a duplicate.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { isAlive, startDetached, tailFile } from '../services/processes.ts';
import { sparkSubmit } from '../services/spark.ts';
import type { Deployment, JobProcess } from './state.ts';

/** Topics and subjects jobs read and write; injectable so tests run isolated. */
export interface JobTopics {
  readonly input: string;
  readonly output: string;
  readonly rejected: string;
  readonly progress: string;
  /** Registry subjects; undefined = the runner's defaults (the contracts' subjects). */
  readonly recordsSubject?: string;
  readonly feedbackSubject?: string;
}

export interface LaunchSpec {
  readonly deployment: Deployment;
  readonly jobId: string;
  readonly startingOffsets: string;
}

export class JobLauncher {
  constructor(
    private readonly config: DiamondConfig,
    private readonly topics: JobTopics,
    private readonly dirs: { readonly jobs: string; readonly checkpoints: string },
  ) {}

  static directories(config: DiamondConfig): { jobs: string; checkpoints: string } {
    return { jobs: join(config.home, 'orchestrator', 'jobs'), checkpoints: join(config.home, 'orchestrator', 'checkpoints') };
  }

  start({ deployment, jobId, startingOffsets }: LaunchSpec): JobProcess {
    const dir = join(this.dirs.jobs, jobId);
    mkdirSync(dir, { recursive: true });
    const stamp = `${new Date().toISOString().replaceAll(':', '').replace(/\.\d+Z$/, 'Z')}-${deployment.version}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    const driverPidFile = join(dir, `${stamp}.driver.pid`);
    const exitFile = join(dir, `${stamp}.exit`);
    const logFile = join(dir, `${stamp}.log`);
    const submit = sparkSubmit(this.config, join(this.config.projectRoot, 'usecases', 'sdk', 'launch_job.py'), [
      '--usecase-dir', deployment.folder, '--variant', deployment.variant, '--job-id', jobId,
      '--brokers', this.config.kafka.brokers.join(','), '--registry-url', this.config.registry.url,
      '--starting-offsets', startingOffsets,
      '--input-topic', this.topics.input, '--output-topic', this.topics.output,
      '--rejected-topic', this.topics.rejected, '--progress-topic', this.topics.progress,
      ...(this.topics.recordsSubject ? ['--records-subject', this.topics.recordsSubject] : []),
      ...(this.topics.feedbackSubject ? ['--feedback-subject', this.topics.feedbackSubject] : []),
      ...(deployment.settings.trigger ? ['--trigger', deployment.settings.trigger] : []),
      '--checkpoint-root', join(this.dirs.checkpoints, jobId), '--pid-file', driverPidFile,
    ], { 'spark.app.name': jobId });
    // A shell leads the group and records spark-submit's exit code when the job ends on
    // its own; the driver pid file path is unique per start and marks the command line.
    const record = startDetached({
      command: '/bin/sh',
      args: ['-c', '"$@"; echo $? > "$0"', exitFile, submit.command, ...submit.args],
      env: submit.env,
      cwd: this.config.projectRoot,
      logFile,
      pidFile: join(dir, `${stamp}.group.pid`),
      marker: driverPidFile,
    });
    return { groupPid: record.pid, marker: driverPidFile, driverPidFile, exitFile, logFile, version: deployment.version, startedAt: Date.now() };
  }

  /** Alive and still the process we started (not a reused pid). */
  isRunning(job: JobProcess): boolean {
    if (!isAlive(job.groupPid)) return false;
    try {
      return readFileSync(`/proc/${job.groupPid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(job.marker);
    } catch {
      return existsSync(`/proc/${job.groupPid}`) ? false : true; // no /proc: trust the pid
    }
  }

  /** spark-submit's exit code if the job ended on its own; null when killed or still running. */
  exitCode(job: JobProcess): number | null {
    if (!existsSync(job.exitFile)) return null;
    const code = Number(readFileSync(job.exitFile, 'utf8').trim());
    return Number.isInteger(code) ? code : null;
  }

  driverPid(job: JobProcess): number | null {
    if (!existsSync(job.driverPidFile)) return null;
    const pid = Number(readFileSync(job.driverPidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  /**
   * Graceful stop: SIGTERM to the Python driver (it finishes its batch, reports, exits 0);
   * to the whole group when the driver has not written its pid yet.
   */
  requestStop(job: JobProcess): void {
    const driver = this.driverPid(job);
    if (driver !== null && isAlive(driver)) signal(driver, 'SIGTERM');
    else signal(-job.groupPid, 'SIGTERM');
  }

  kill(job: JobProcess): void {
    signal(-job.groupPid, 'SIGKILL');
  }

  /** The most useful line of a dead job's log: its last error line, else the last lines. */
  lastError(job: JobProcess): string {
    const tail = tailFile(job.logFile, 200).split('\n');
    for (const line of tail.reverse()) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string; file?: string; line?: number };
        if (entry.level === 'error' && entry.msg) return entry.file ? `${entry.msg} (${entry.file}:${entry.line ?? '?'})` : entry.msg;
      } catch {
        // not a JSON log line
      }
    }
    return tailFile(job.logFile, 3).slice(-1000);
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}
