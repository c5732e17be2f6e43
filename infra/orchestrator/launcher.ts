/**
 * JobLauncher: starts one use case job as its own spark-submit process group, with its own
 * log file under `config.home` (kept after it ends), and observes and stops it. Everything
 * it needs to find the process again (group pid, a marker in its command line, the driver's
 * pid file, the exit-code file) goes into the JobProcess stored in Redis, so a restarted
 * orchestrator can adopt the job instead of starting a duplicate.
 */
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiamondConfig } from '../../shared/config.ts';
import type { Logger } from '../../shared/logger.ts';
import { escapeRegExp, findProcesses, isAlive, signalAll, startDetached, tailFile, type ProcessInfo } from '../../shared/process-group.ts';
import { pythonEnvironment, sparkSubmit } from '../../shared/runtime-paths.ts';
import { tenantEnv } from '../../shared/tenant-env.ts';
import { writeJobConnections } from '../../shared/job-connections.ts';
import { assertJobUserCanRead, defaultTenantDirs, jobUser, openPathTo, ownDir, restrictPlatformHome, type JobUser } from './job-user.ts';
import { newProgressKey } from './progress-signature.ts';
import { launchIdOf, type Deployment, type JobProcess, type SpareProcess } from './state.ts';
import { isUsecaseEnvReady, usecaseEnvAt, usecaseSparkSettings, type UsecaseSparkSettings } from './usecase-env.ts';

const REBUILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'usecase-env-rebuild.ts');

/**
 * The folder of the pool's spare drivers under the jobs directory (no job id looks like it):
 * `<jobs>/_pool/<spare id>.driver.pid` is a spare's marker, so /proc scans find spares the
 * way they find jobs, and a spare that took a job is that job's launch (its assignment file
 * names the job).
 */
export const POOL_DIR = '_pool';

/**
 * What makes two drivers interchangeable: the interpreter and platform environment, the
 * driver's memory and the master (which fixes its cores). A deployment with its own Python
 * environment has none: it starts cold.
 */
export function poolKey(config: DiamondConfig): string {
  return JSON.stringify([pythonEnvironment(config).python, config.spark.driverMemory, config.spark.master]);
}

export function poolKeyOf(config: DiamondConfig, deployment: Deployment): string | null {
  return deployment.pythonEnv ? null : poolKey(config);
}

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
  /** Start warm, then wait for the starting offsets (handOver): an upgrade at an exact batch boundary. */
  readonly handover?: boolean;
  /** Run the use case over the archived history since this ISO time, up to the archive's batch `historyBatch`, before the stream (backfill.py). */
  readonly backfill?: { readonly since: string; readonly historyBatch: number };
}

/** What every driver started by the launcher has: its group, marker and files. */
interface IdleDriver {
  readonly groupPid: number;
  readonly marker: string;
  readonly driverPidFile: string;
  readonly exitFile: string;
  readonly logFile: string;
  readonly startedAt: number;
}

/** A function session's process (function-sessions.ts supervises it). */
export interface FunctionSessionProcess extends IdleDriver {
  readonly sessionId: string;
  /** Written by the session (rename) once it listens: { pid, port, readyAt, session_ms }. */
  readonly sessionFile: string;
  readonly secretFile: string;
}

/** The history archiver's process (history-archive.ts supervises it). */
export interface HistoryArchiverProcess extends IdleDriver {
  readonly archiverId: string;
}

/** What the archiver copies where (docs/RUNS.md, "History"). */
export interface HistoryArchiverSpec {
  readonly historyDir: string;
  readonly checkpointDir: string;
  readonly retentionDays: number;
  readonly triggerMs: number;
  readonly recordsTopic: string;
  readonly feedbackTopic: string;
  /** Registry subjects; undefined = the archiver's defaults (the contracts' subjects). */
  readonly recordsSubject?: string;
  readonly feedbackSubject?: string;
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

  start(spec: LaunchSpec): JobProcess {
    const { deployment, jobId, launchId } = spec;
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
    // Kafka and registry credentials, the same way (shared/job-connections.ts); none when nothing is secured.
    const connectionArgs = writeJobConnections(this.config, join(dir, `${stamp}.connections.json`), user);
    const python = this.pythonSettings(deployment, logFile);
    const handoverFile = spec.handover ? join(dir, `${stamp}.handover.json`) : undefined;
    const submit = sparkSubmit(this.config, this.script(), [...this.jobArgs(spec, driverPidFile, progressKeyFile, handoverFile), ...connectionArgs],
      { 'spark.app.name': jobId, ...python.conf }, { archives: python.archives, env: { ...python.env, HOME: home } });
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
    return { groupPid: record.pid, marker: driverPidFile, launchId, driverPidFile, exitFile, logFile, version: deployment.version, startedAt: Date.now(), progressKey, ...(handoverFile ? { handoverFile } : {}) };
  }

  private script(): string {
    return join(this.config.projectRoot, 'usecases', 'sdk', 'launch_job.py');
  }

  /** The runner's arguments for one job: what a cold launch gets on its command line and a warm one in its assignment. */
  private jobArgs({ deployment, jobId, startingOffsets, backfill }: LaunchSpec, driverPidFile: string, progressKeyFile: string, handoverFile?: string): string[] {
    return [
      '--usecase-dir', deployment.folder, '--variant', deployment.variant, '--job-id', jobId,
      '--brokers', this.config.kafka.brokers.join(','), '--registry-url', this.config.registry.url,
      '--starting-offsets', startingOffsets,
      '--input-topic', this.topics.input, '--output-topic', this.topics.output,
      '--rejected-topic', this.topics.rejected, '--progress-topic', this.topics.progress,
      ...(this.topics.recordsSubject ? ['--records-subject', this.topics.recordsSubject] : []),
      ...(this.topics.feedbackSubject ? ['--feedback-subject', this.topics.feedbackSubject] : []),
      ...(deployment.settings.trigger ? ['--trigger', deployment.settings.trigger] : []),
      '--checkpoint-root', join(this.dirs.checkpoints, jobId), '--pid-file', driverPidFile, '--progress-key-file', progressKeyFile,
      ...(handoverFile ? ['--handover-file', handoverFile] : []),
      ...(backfill ? ['--backfill-since', backfill.since, '--backfill-history-batch', String(backfill.historyBatch), '--history-dir', this.config.runs.historyDir] : []),
    ];
  }

  /**
   * Starts a spare driver for the pool: the same spark-submit, environment, job user and
   * process group as a job's, with `--warm` (warm.py): it warms up, writes its ready file and
   * waits for an assignment.
   */
  startSpare(spareId: string, key: string): SpareProcess {
    const dir = join(this.dirs.jobs, POOL_DIR);
    const started = this.startIdleDriver(dir, spareId, 'diamond-spare', (driverPidFile) => ['--warm', '--assignment-file', join(dir, `${spareId}.assignment.json`), '--pid-file', driverPidFile]);
    return { spareId, key, ...started, assignmentFile: join(dir, `${spareId}.assignment.json`), readyFile: join(dir, `${spareId}.ready.json`), readyAt: null };
  }

  /**
   * Starts a function session (docs/RUNS.md): the same spark-submit, environment, job user and
   * own process group as a job's or a spare's, with `--serve-functions`. The bearer secret
   * goes into a 0600 file of the job user's (never the command line or the environment); the
   * session writes its session file (port, pid) into `dir` once it listens.
   */
  startFunctionSession(dir: string, sessionId: string, spec: { readonly historyDir: string; readonly usecaseRoots: readonly string[]; readonly secret: string; readonly sqlCacheDays: number; readonly sqlRefreshMs: number }): FunctionSessionProcess {
    const sessionFile = join(dir, `${sessionId}.session.json`);
    const secretFile = join(dir, `${sessionId}.secret`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(secretFile, spec.secret, { mode: 0o600 });
    const user = jobUser(this.config);
    if (user) chownSync(secretFile, user.uid, user.gid);
    // The views need both folders, also before the archiver ever ran; the job user owns the
    // history as it does for the archiver (both are platform code run as the job user).
    for (const view of ['records', 'feedback']) mkdirSync(join(spec.historyDir, view), { recursive: true });
    if (user) ownDir(spec.historyDir, user, { recursive: true });
    const started = this.startIdleDriver(dir, sessionId, 'diamond-functions', (driverPidFile) => [
      '--serve-functions', '--session-file', sessionFile, '--pid-file', driverPidFile, '--secret-file', secretFile,
      '--history-dir', spec.historyDir, ...spec.usecaseRoots.flatMap((root) => ['--usecase-root', root]),
      '--sql-cache-days', String(spec.sqlCacheDays), '--sql-refresh-seconds', String(spec.sqlRefreshMs / 1000),
    ], [dir, spec.historyDir], { 'spark.scheduler.mode': 'FAIR' }); // runs share the session fairly (a pool per function)
    return { sessionId, ...started, sessionFile, secretFile };
  }

  /**
   * Starts the history archiver (docs/RUNS.md, "History"): the same spark-submit, environment,
   * job user and own process group as a job's, with `--archive-history`. It runs no tenant code;
   * the job user (when root) owns the history and the checkpoint, which nothing else writes.
   */
  startHistoryArchiver(dir: string, archiverId: string, spec: HistoryArchiverSpec): HistoryArchiverProcess {
    const user = jobUser(this.config);
    if (user) {
      ownDir(spec.historyDir, user, { recursive: true }); // a history written by an earlier root-run archiver is handed over
      ownDir(spec.checkpointDir, user, { recursive: true });
    }
    const started = this.startIdleDriver(dir, archiverId, 'diamond-history', (driverPidFile) => ['--pid-file', driverPidFile, ...historyArchiverArgs(this.config, spec), ...writeJobConnections(this.config, join(dir, `${archiverId}.connections.json`), user)], [dir, spec.historyDir]);
    return { archiverId, ...started };
  }

  /**
   * A driver that waits for work (a spare, a function session) in `dir`: its files are
   * `<dir>/<id>.{driver.pid,exit,log,group.pid}` and `<id>.home`; the driver pid file's path
   * marks its processes. As root it runs as the job user, who owns `dir`.
   */
  private startIdleDriver(dir: string, id: string, appName: string, runnerArgs: (driverPidFile: string) => string[], extraTenantDirs: readonly string[] = [], conf: Readonly<Record<string, string>> = {}): IdleDriver {
    mkdirSync(dir, { recursive: true });
    const user = jobUser(this.config);
    if (user) {
      this.prepareTenantDirs(user, extraTenantDirs);
      ownDir(dir, user); // the driver writes its pid and ready files here
    }
    const driverPidFile = join(dir, `${id}.driver.pid`);
    const exitFile = join(dir, `${id}.exit`);
    const logFile = join(dir, `${id}.log`);
    const home = join(dir, `${id}.home`);
    mkdirSync(home, { recursive: true, mode: 0o700 });
    if (user) ownDir(home, user);
    const submit = sparkSubmit(this.config, this.script(), runnerArgs(driverPidFile), { 'spark.app.name': appName, ...conf }, { env: { HOME: home } });
    if (user) assertJobUserCanRead(user, [submit.command, submit.env['PYSPARK_PYTHON'] ?? ''].filter(Boolean));
    const drop = user ? `cd ${shellQuote([home])} && setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups ` : '';
    const record = startDetached({
      command: '/bin/sh',
      args: ['-c', `${drop}"$@"; echo $? > "$0"`, exitFile, submit.command, ...submit.args],
      env: submit.env,
      cwd: this.config.projectRoot,
      logFile,
      pidFile: join(dir, `${id}.group.pid`),
      marker: driverPidFile,
    });
    return { groupPid: record.pid, marker: driverPidFile, driverPidFile, exitFile, logFile, startedAt: Date.now() };
  }

  /**
   * Gives a spare its job: the job's arguments go into its assignment file (written to a
   * temporary name and renamed, so the driver reads it whole; readable by the job user
   * only). From here on the spare is the job's launch: same group, marker and files.
   */
  claim(spare: SpareProcess, spec: LaunchSpec): JobProcess {
    const user = jobUser(this.config);
    if (user) this.prepareForJobUser(user, spec.jobId);
    const dir = dirname(spare.assignmentFile);
    const progressKey = newProgressKey();
    const progressKeyFile = join(dir, `${spare.spareId}.progress-key`);
    writeFileSync(progressKeyFile, progressKey, { mode: 0o600 });
    const handoverFile = spec.handover ? join(dir, `${spare.spareId}.handover.json`) : undefined;
    const connectionArgs = writeJobConnections(this.config, join(dir, `${spare.spareId}.connections.json`), user);
    const tmp = `${spare.assignmentFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ jobId: spec.jobId, launchId: spec.launchId, argv: [...this.jobArgs(spec, spare.driverPidFile, progressKeyFile, handoverFile), ...connectionArgs] }) + '\n', { mode: 0o600 });
    if (user) {
      chownSync(progressKeyFile, user.uid, user.gid);
      chownSync(tmp, user.uid, user.gid);
    }
    renameSync(tmp, spare.assignmentFile);
    return {
      groupPid: spare.groupPid, marker: spare.marker, launchId: spare.spareId, driverPidFile: spare.driverPidFile, exitFile: spare.exitFile,
      logFile: spare.logFile, version: spec.deployment.version, startedAt: Date.now(), progressKey, ...(handoverFile ? { handoverFile } : {}),
    };
  }

  /** Whether a launch started with a handover is warm and waiting for its starting offsets. */
  isWaitingForHandover(job: JobProcess): boolean {
    return job.handoverFile !== undefined && existsSync(`${job.handoverFile}.waiting`);
  }

  /** Gives a waiting launch its starting offsets (written whole: a temporary name, then renamed). */
  handOver(job: JobProcess, startingOffsets: string): void {
    if (!job.handoverFile) throw new Error(`launch ${job.launchId ?? job.groupPid} was not started with a handover`);
    const tmp = `${job.handoverFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ starting_offsets: startingOffsets }) + '\n', { mode: 0o644 });
    renameSync(tmp, job.handoverFile);
  }

  /** Whether a spare finished its warm-up (its ready file exists). */
  isReady(spare: SpareProcess): boolean {
    return existsSync(spare.readyFile);
  }

  /**
   * What a job running as the job user needs: a way through to the job and checkpoint folders
   * (crossable, not listable), its own job folder and checkpoints, and the platform's home
   * closed around them (tokens, local.json, the Redis password and data).
   */
  private prepareForJobUser(user: JobUser, jobId: string): void {
    this.prepareTenantDirs(user);
    ownDir(join(this.dirs.jobs, jobId), user);
    ownDir(join(this.dirs.checkpoints, jobId), user, { recursive: true }); // checkpoints written by an earlier root-run job are handed over
  }

  private prepareTenantDirs(user: JobUser, extra: readonly string[] = []): void {
    const eventLogs = this.config.spark.eventLogDir;
    if (eventLogs) {
      mkdirSync(eventLogs, { recursive: true });
      chmodSync(eventLogs, 0o1777); // before restrictPlatformHome, which leaves sticky folders as they are
    }
    restrictPlatformHome(this.config.home, [...defaultTenantDirs(this.config), this.dirs.jobs, this.dirs.checkpoints, ...extra]);
    for (const tenantDir of [this.dirs.jobs, this.dirs.checkpoints, ...extra, ...(eventLogs ? [eventLogs] : [])]) {
      mkdirSync(tenantDir, { recursive: true });
      for (const home of openPathTo(tenantDir, user)) {
        this.log?.warn({ folder: home, jobUser: user.name }, `opened the home folder ${home} for crossing (o+x) so the job user ${user.name} can reach ${tenantDir}; keep the checkout and DIAMOND_HOME outside home folders to avoid it`);
      }
      if (tenantDir !== eventLogs) chmodSync(tenantDir, 0o711);
    }
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
  isRunning(job: Pick<JobProcess, 'groupPid' | 'marker'>): boolean {
    if (!isAlive(job.groupPid)) return false;
    try {
      return readFileSync(`/proc/${job.groupPid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(job.marker);
    } catch {
      return existsSync(`/proc/${job.groupPid}`) ? false : true; // no /proc: trust the pid
    }
  }

  /** spark-submit's exit code if the job ended on its own; null when killed or still running. */
  exitCode(job: Pick<JobProcess, 'exitFile'>): number | null {
    if (!existsSync(job.exitFile)) return null;
    const code = Number(readFileSync(job.exitFile, 'utf8').trim());
    return Number.isInteger(code) ? code : null;
  }

  driverPid(job: Pick<JobProcess, 'driverPidFile'>): number | null {
    if (!existsSync(job.driverPidFile)) return null;
    const pid = Number(readFileSync(job.driverPidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  /**
   * Graceful stop: SIGTERM to the Python driver (it finishes its batch, reports, exits 0);
   * to the whole group when the driver has not written its pid yet. A driver that wrote its
   * pid and is gone has exited on its own: nothing is signalled, since its JVM follows it and
   * the group's leader, the shell that records the exit code, must live to write it (a second
   * stop request after a handover used to kill that shell: exit code lost, a graceful stop
   * reported as a kill). The driver is signalled only while its command line carries the
   * launch's marker, never a process that reused its pid.
   */
  requestStop(job: Pick<JobProcess, 'driverPidFile' | 'groupPid' | 'marker'>): void {
    const driver = this.driverPid(job);
    if (driver === null) signal(-job.groupPid, 'SIGTERM');
    else if (this.isRunning({ groupPid: driver, marker: job.marker })) signal(driver, 'SIGTERM');
  }

  /** SIGKILL to the launch's process group and to every process carrying its marker (the group's leader may be long gone). */
  kill(job: Pick<JobProcess, 'groupPid' | 'marker'>): void {
    this.signalLaunch(job, 'SIGKILL');
  }

  /**
   * Sends `name` to everything of the launch: its group (the JVM and Python workers stay in
   * it after the leader died) and each marked process; the group pid is signalled only
   * while a marked process is in it, so a reused group id is never hit.
   */
  signalLaunch(job: Pick<JobProcess, 'groupPid' | 'marker'>, name: NodeJS.Signals): void {
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
   * records, and what `diamond down` must leave none of. A pool spare belongs to the job its
   * assignment names, and to POOL_DIR while it has none.
   */
  jobProcesses(): MarkedProcess[] {
    const pattern = new RegExp(`${escapeRegExp(this.dirs.jobs)}/([^/\\s]+)/([^/\\s]+)\\.driver\\.pid`);
    const assigned = new Map<string, string>();
    const jobOf = (dir: string, launchId: string): string => {
      if (dir !== POOL_DIR) return dir;
      if (!assigned.has(launchId)) assigned.set(launchId, assignedJob(join(this.dirs.jobs, POOL_DIR, `${launchId}.assignment.json`)) ?? POOL_DIR);
      return assigned.get(launchId)!;
    };
    return findProcesses(pattern).flatMap((p) => {
      const match = pattern.exec(p.cmdline);
      return match ? [{ ...p, jobId: jobOf(match[1]!, match[2]!), launchId: match[2]! }] : [];
    });
  }

  /** The most useful line of a dead job's log: its last error line, else the last lines. */
  lastError(job: Pick<JobProcess, 'logFile'>): string {
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

/**
 * The archiver's arguments but its pid file: what a launch is compared on before a new
 * orchestrator adopts it (history-archive.ts).
 */
export function historyArchiverArgs(config: DiamondConfig, spec: HistoryArchiverSpec): string[] {
  return [
    '--archive-history', '--brokers', config.kafka.brokers.join(','), '--registry-url', config.registry.url,
    '--history-dir', spec.historyDir, '--checkpoint-dir', spec.checkpointDir, '--retention-days', String(spec.retentionDays),
    '--trigger', `${spec.triggerMs} milliseconds`, '--records-topic', spec.recordsTopic, '--feedback-topic', spec.feedbackTopic,
    ...(spec.recordsSubject ? ['--records-subject', spec.recordsSubject] : []),
    ...(spec.feedbackSubject ? ['--feedback-subject', spec.feedbackSubject] : []),
  ];
}

/** The job id a spare's assignment names; null before it has one. */
function assignedJob(assignmentFile: string): string | null {
  try {
    const parsed = JSON.parse(readFileSync(assignmentFile, 'utf8')) as { jobId?: unknown };
    return typeof parsed.jobId === 'string' ? parsed.jobId : null;
  } catch {
    return null;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function shellQuote(words: readonly string[]): string {
  return words.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(' ');
}
