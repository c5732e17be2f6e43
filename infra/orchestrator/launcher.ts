/**
 * JobLauncher: starts one use case job as its own spark-submit process group, with its own
 * log file under `config.home` (kept after it ends), and observes and stops it. Everything
 * it needs to find the process again (group pid, a marker in its command line, the driver's
 * pid file, the exit-code file) goes into the JobProcess stored in Redis, so a restarted
 * orchestrator can adopt the job instead of starting a duplicate.
 */
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiamondConfig } from '../../shared/config.ts';
import type { Logger } from '../../shared/logger.ts';
import { findProcesses, isAlive, signalAll, startDetached, tailFile, type ProcessInfo } from '../../shared/process-group.ts';
import { sparkSubmit } from '../../shared/runtime-paths.ts';
import { tenantEnv } from '../../shared/tenant-env.ts';
import { assertJobUserCanRead, defaultTenantDirs, jobUser, openPathTo, ownDir, restrictPlatformHome, type JobUser } from './job-user.ts';
import { newProgressKey } from './progress-signature.ts';
import { launchIdOf, type Deployment, type JobProcess } from './state.ts';
import { isUsecaseEnvReady, usecaseEnvAt, usecaseSparkSettings, type UsecaseSparkSettings } from './usecase-env.ts';

const REBUILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'usecase-env-rebuild.ts');

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
  /** From newLaunchId(), recorded (fenced) as the job's launch intent before the spawn. */
  readonly launchId: string;
}

/** A process (any member of a launch's tree, orphaned or not) carrying one of our launch markers. */
export interface MarkedProcess extends ProcessInfo {
  readonly jobId: string;
  readonly launchId: string;
}

export class JobLauncher {
  constructor(
    private readonly config: DiamondConfig,
    private readonly topics: JobTopics,
    private readonly dirs: { readonly jobs: string; readonly checkpoints: string },
    private readonly log?: Pick<Logger, 'warn'>,
  ) {}

  static directories(config: DiamondConfig): { jobs: string; checkpoints: string } {
    return { jobs: join(config.home, 'orchestrator', 'jobs'), checkpoints: join(config.home, 'orchestrator', 'checkpoints') };
  }

  /** Unique per launch; it names the launch's files, and its marker is the driver pid file's path. */
  static newLaunchId(version: string): string {
    return `${new Date().toISOString().replaceAll(':', '').replace(/\.\d+Z$/, 'Z')}-${version}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  }

  start({ deployment, jobId, startingOffsets, launchId }: LaunchSpec): JobProcess {
    const dir = join(this.dirs.jobs, jobId);
    mkdirSync(dir, { recursive: true });
    const user = jobUser(this.config);
    if (user) this.prepareForJobUser(user, jobId);
    const stamp = launchId;
    const driverPidFile = join(dir, `${stamp}.driver.pid`);
    const exitFile = join(dir, `${stamp}.exit`);
    const logFile = join(dir, `${stamp}.log`);
    // This launch's progress key: in the job record (Redis) for the orchestrator, in a 0600
    // file for the job (never its environment or command line); the runner removes the file.
    const progressKey = newProgressKey();
    const progressKeyFile = join(dir, `${stamp}.progress-key`);
    writeFileSync(progressKeyFile, progressKey, { mode: 0o600 });
    const home = join(dir, 'home'); // a private home: the job sees nothing of the orchestrator's
    mkdirSync(home, { recursive: true, mode: 0o700 });
    if (user) {
      chownSync(progressKeyFile, user.uid, user.gid); // the runner reads and removes it
      ownDir(home, user);
    }
    const python = this.pythonSettings(deployment, logFile);
    const submit = sparkSubmit(this.config, join(this.config.projectRoot, 'usecases', 'sdk', 'launch_job.py'), [
      '--usecase-dir', deployment.folder, '--variant', deployment.variant, '--job-id', jobId,
      '--brokers', this.config.kafka.brokers.join(','), '--registry-url', this.config.registry.url,
      '--starting-offsets', startingOffsets,
      '--input-topic', this.topics.input, '--output-topic', this.topics.output,
      '--rejected-topic', this.topics.rejected, '--progress-topic', this.topics.progress,
      ...(this.topics.recordsSubject ? ['--records-subject', this.topics.recordsSubject] : []),
      ...(this.topics.feedbackSubject ? ['--feedback-subject', this.topics.feedbackSubject] : []),
      ...(deployment.settings.trigger ? ['--trigger', deployment.settings.trigger] : []),
      '--checkpoint-root', join(this.dirs.checkpoints, jobId), '--pid-file', driverPidFile, '--progress-key-file', progressKeyFile,
    ], { 'spark.app.name': jobId, ...python.conf }, { archives: python.archives, env: { ...python.env, HOME: home } });
    // A shell leads the group and records spark-submit's exit code when the job ends on
    // its own; the driver pid file path is unique per start and marks the command line.
    // A vanished Python environment is rebuilt first, inside the group (pip can take a
    // minute; the reconcile loop must not wait for it), its output in the job's log.
    // pip needs the operator's pip settings (index, certificates); the job itself must not keep them.
    const pipOnly = python.rebuild ? Object.keys(tenantEnv({}, { pip: true })).filter((name) => !(name in submit.env)) : [];
    const rebuild = python.rebuild ? `${shellQuote(python.rebuild)} && ${pipOnly.length > 0 ? `unset ${pipOnly.join(' ')} && ` : ''}` : '';
    // As root, the shell (and the rebuild, which runs pip as the job user itself) stays root,
    // so the exit code is written by us; spark-submit and everything below it run as the job
    // user, in its own home (Spark writes into its working directory: artifacts/).
    if (user) assertJobUserCanRead(user, [submit.command, join(deployment.folder, 'usecase.yaml'), ...(python.rebuild ? [] : [submit.env['PYSPARK_PYTHON'] ?? ''])].filter(Boolean));
    const drop = user ? `cd ${shellQuote([home])} && setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups ` : '';
    const record = startDetached({
      command: '/bin/sh',
      args: ['-c', `${rebuild}${drop}"$@"; echo $? > "$0"`, exitFile, submit.command, ...submit.args],
      env: python.rebuild ? { ...tenantEnv({}, { pip: true }), ...submit.env } : submit.env,
      cwd: this.config.projectRoot,
      logFile,
      pidFile: join(dir, `${stamp}.group.pid`),
      marker: driverPidFile,
    });
    return { groupPid: record.pid, marker: driverPidFile, launchId, driverPidFile, exitFile, logFile, version: deployment.version, startedAt: Date.now(), progressKey };
  }

  /**
   * What a job running as the job user needs: a way through to the job and checkpoint folders
   * (crossable, not listable), its own job folder and checkpoints, and the platform's home
   * closed around them (tokens, local.json, the Redis password and data).
   */
  private prepareForJobUser(user: JobUser, jobId: string): void {
    restrictPlatformHome(this.config.home, [...defaultTenantDirs(this.config), this.dirs.jobs, this.dirs.checkpoints]);
    for (const tenantDir of [this.dirs.jobs, this.dirs.checkpoints]) {
      mkdirSync(tenantDir, { recursive: true });
      for (const home of openPathTo(tenantDir, user)) {
        this.log?.warn({ folder: home, jobUser: user.name }, `opened the home folder ${home} for crossing (o+x) so the job user ${user.name} can reach ${tenantDir}; keep the checkout and DIAMOND_HOME outside home folders to avoid it`);
      }
      chmodSync(tenantDir, 0o711);
    }
    ownDir(join(this.dirs.jobs, jobId), user);
    ownDir(join(this.dirs.checkpoints, jobId), user, { recursive: true }); // checkpoints written by an earlier root-run job are handed over
  }

  /**
   * The job's own Python environment (deployment.pythonEnv): its interpreter for this job
   * only, its archive on a cluster master, and the command that rebuilds it first when it
   * vanished from the cache since the deploy.
   */
  private pythonSettings(deployment: Deployment, logFile: string): UsecaseSparkSettings & { rebuild: string[] | null } {
    if (!deployment.pythonEnv) return { env: {}, archives: [], conf: {}, rebuild: null };
    const env = usecaseEnvAt(this.config, deployment.pythonEnv);
    const settings = usecaseSparkSettings(env, this.config.spark.master);
    if (isUsecaseEnvReady(env)) return { ...settings, rebuild: null };
    const msg = `the Python environment ${env.dir} of ${deployment.usecase} is gone from the cache; rebuilding it before the job starts`;
    this.log?.warn({ usecase: deployment.usecase, variant: deployment.variant, pythonEnv: env.dir, logFile }, msg);
    appendFileSync(logFile, JSON.stringify({ level: 'warn', time: Date.now(), msg }) + '\n');
    return {
      ...settings,
      rebuild: [process.execPath, '--import', 'tsx', REBUILD_SCRIPT, deployment.folder, env.dir, this.config.cacheDir, this.config.spark.master, this.config.usecases.jobUser],
    };
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

  /** SIGKILL to the launch's process group and to every process carrying its marker (the group's leader may be long gone). */
  kill(job: JobProcess): void {
    this.signalLaunch(job, 'SIGKILL');
  }

  /**
   * Sends `name` to everything of the launch: its group (the JVM and Python workers stay in
   * it after the leader died) and each marked process; the group pid is signalled only
   * while a marked process is in it, so a reused group id is never hit.
   */
  signalLaunch(job: JobProcess, name: NodeJS.Signals): void {
    const marked = findProcesses(new RegExp(escapeRegExp(job.marker)));
    const groups = marked.map((p) => p.pgid);
    if (isAlive(job.groupPid) && this.isRunning(job)) groups.push(job.groupPid);
    signalAll(groups, marked.map((p) => p.pid), name);
  }

  /** Nothing of the launch runs any more: no process carries its marker (scanned under /proc). */
  isGone(job: JobProcess): boolean {
    if (this.isRunning(job)) return false;
    const launchId = launchIdOf(job);
    return !this.jobProcesses().some((p) => p.launchId === launchId);
  }

  /**
   * Every process on this machine carrying a launch marker under this launcher's jobs
   * directory, with the job and launch it belongs to: what adoption compares with the
   * records, and what `diamond down` must leave none of.
   */
  jobProcesses(): MarkedProcess[] {
    const pattern = new RegExp(`${escapeRegExp(this.dirs.jobs)}/([^/\\s]+)/([^/\\s]+)\\.driver\\.pid`);
    return findProcesses(pattern).flatMap((p) => {
      const match = pattern.exec(p.cmdline);
      return match ? [{ ...p, jobId: match[1]!, launchId: match[2]! }] : [];
    });
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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function shellQuote(words: readonly string[]): string {
  return words.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(' ');
}
