/**
 * The history archive: the leading orchestrator keeps one history archiver running (docs/RUNS.md,
 * "History"; launcher.ts startHistoryArchiver), the Spark driver that copies the records and
 * feedback topics to Parquet under DIAMOND_HISTORY_DIR, exactly once through its checkpoint.
 *
 *   start() ─► waiting-for-topics ─ both exist ─► running ─ it dies ─► backoff ─ delay over ─► (waiting-for-topics)
 *   stop()  ─► stopped: SIGTERM to the driver, SIGKILL to the group after the grace
 *
 * Its files are `<dir>/ha-<stamp>.{driver.pid,exit,log,group.pid,args.json}` and its checkpoint
 * `<dir>/checkpoint` — outside the jobs folder, whose marked processes the reconciler reaps. At
 * start an archiver a previous orchestrator left is adopted when it runs with the same
 * arguments, else killed: two archivers on one checkpoint would fight over its commits.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin } from 'kafkajs';
import { backoffDelayMs } from '../../shared/backoff.ts';
import type { DiamondConfig } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { escapeRegExp, findProcesses, readPidRecord, signalAll } from '../../shared/process-group.ts';
import { historyArchiverArgs, type HistoryArchiverProcess, type HistoryArchiverSpec, type JobLauncher } from './launcher.ts';

export type HistoryArchiveState = 'stopped' | 'waiting-for-topics' | 'running' | 'backoff';

/** What `diamond status` and /v1/status show. */
export interface HistoryArchiveStatus {
  readonly state: HistoryArchiveState;
  readonly pid: number | null;
  readonly restarts: number;
  readonly lastError: string | null;
  readonly logFile: string | null;
}

export interface HistoryArchiveSettings {
  /** The archiver's folder (launch files, `checkpoint/`). */
  readonly dir: string;
  readonly topics: { readonly records: string; readonly feedback: string; readonly recordsSubject?: string; readonly feedbackSubject?: string };
}

const SUPERVISE_MS = 1000;
/** SIGTERM → SIGKILL; under the 15 s `diamond down` gives the orchestrator (platform-components.ts). */
const STOP_GRACE_MS = 10_000;
/** An archiver that ran this long before it died starts its backoff over. */
const HEALTHY_AFTER_MS = 10 * 60_000;

export class HistoryArchive {
  #state: HistoryArchiveState = 'stopped';
  #process: HistoryArchiverProcess | null = null;
  #timer: NodeJS.Timeout | null = null;
  #busy = false;
  #restarts = 0;
  /** Deaths in a row (the backoff's attempt), and when the next start may happen. */
  #deaths = 0;
  #dueAt = 0;
  #lastError: string | null = null;
  #waitingLogged = false;
  #reported = '';
  readonly #spec: HistoryArchiverSpec;

  constructor(
    private readonly config: DiamondConfig,
    private readonly launcher: JobLauncher,
    private readonly admin: Pick<Admin, 'listTopics'>,
    private readonly settings: HistoryArchiveSettings,
    private readonly log: Pick<Logger, 'info' | 'warn'>,
    /** Told each changed status (the reconciler stores it for /v1/status). */
    private readonly onChange: (status: HistoryArchiveStatus) => Promise<void> = async () => undefined,
  ) {
    const { topics } = settings;
    this.#spec = {
      historyDir: config.runs.historyDir, checkpointDir: join(settings.dir, 'checkpoint'), retentionDays: config.history.retentionDays,
      triggerMs: config.history.triggerMs, recordsTopic: topics.records, feedbackTopic: topics.feedback,
      ...(topics.recordsSubject ? { recordsSubject: topics.recordsSubject } : {}), ...(topics.feedbackSubject ? { feedbackSubject: topics.feedbackSubject } : {}),
    };
  }

  get status(): HistoryArchiveStatus {
    const process = this.#process;
    return { state: this.#state, pid: process?.groupPid ?? null, restarts: this.#restarts, lastError: this.#lastError, logFile: process?.logFile ?? null };
  }

  /** Adopts or kills what a previous orchestrator left, then keeps one archiver running. Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.#state = 'waiting-for-topics';
    this.adoptOrKillLeftovers();
    this.#timer = setInterval(() => void this.supervise(), SUPERVISE_MS);
    this.#timer.unref();
    void this.supervise();
  }

  /** Stops supervising and stops the archiver: SIGTERM to its driver (it stops its queries), SIGKILL after the grace. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#state = 'stopped';
    while (this.#busy) await sleep(50); // a start under way finishes first, so its process is stopped too
    const process = this.#process;
    this.#process = null;
    if (!process) return void (await this.report());
    this.log.info({ pid: process.groupPid }, 'stopping the history archiver');
    this.launcher.requestStop(process);
    const deadline = Date.now() + STOP_GRACE_MS;
    while (Date.now() < deadline && this.launcher.isRunning(process)) await sleep(100);
    this.launcher.kill(process); // whatever of its group is left
    await this.report();
  }

  private async report(): Promise<void> {
    const status = this.status;
    const text = JSON.stringify(status);
    if (text === this.#reported) return;
    this.#reported = text;
    await this.onChange(status).catch((error: unknown) => this.log.warn({ error: errorMessage(error) }, 'could not store the history archiver status'));
  }

  /** Every process carrying one of this folder's archiver markers, by launch. */
  private marked(): { archiverId: string; pid: number; pgid: number }[] {
    const pattern = new RegExp(`${escapeRegExp(this.settings.dir)}/(ha-[^/\\s]+)\\.driver\\.pid`);
    return findProcesses(pattern).flatMap((p) => {
      const match = pattern.exec(p.cmdline);
      return match ? [{ archiverId: match[1]!, pid: p.pid, pgid: p.pgid }] : [];
    });
  }

  private adoptOrKillLeftovers(): void {
    const found = this.marked();
    if (found.length === 0) return;
    const launches = [...new Set(found.map((p) => p.archiverId))];
    const candidate = launches.length === 1 ? this.launchOf(launches[0]!) : null;
    if (candidate && this.launcher.isRunning(candidate) && this.sameArguments(candidate.archiverId)) {
      this.#process = candidate;
      this.#state = 'running';
      this.log.info({ pid: candidate.groupPid, logFile: candidate.logFile }, 'adopted the history archiver a previous orchestrator started');
      return;
    }
    this.log.warn({ pids: found.map((p) => p.pid), launches }, 'killing history archivers a previous orchestrator left (other arguments, or more than one)');
    signalAll(found.map((p) => p.pgid), found.map((p) => p.pid), 'SIGKILL');
  }

  /** A launch's files, from its id (what the launcher named them). */
  private launchOf(archiverId: string): HistoryArchiverProcess | null {
    const dir = this.settings.dir;
    const group = readPidRecord(join(dir, `${archiverId}.group.pid`));
    if (!group) return null;
    return {
      archiverId, groupPid: group.pid, marker: join(dir, `${archiverId}.driver.pid`), driverPidFile: join(dir, `${archiverId}.driver.pid`),
      exitFile: join(dir, `${archiverId}.exit`), logFile: join(dir, `${archiverId}.log`), startedAt: Date.parse(group.startedAt) || Date.now(),
    };
  }

  private sameArguments(archiverId: string): boolean {
    const file = join(this.settings.dir, `${archiverId}.args.json`);
    return existsSync(file) && readFileSync(file, 'utf8') === JSON.stringify(historyArchiverArgs(this.config, this.#spec));
  }

  /** One supervision round; rounds never overlap (a topic listing can take a while). */
  private async supervise(): Promise<void> {
    if (this.#busy || !this.#timer) return;
    this.#busy = true;
    try {
      await this.round(Date.now());
      await this.report();
    } catch (error) {
      this.log.warn({ error: errorMessage(error) }, 'history archive supervision failed; retrying');
    } finally {
      this.#busy = false;
    }
  }

  private async round(now: number): Promise<void> {
    const process = this.#process;
    if (process) {
      if (this.launcher.isRunning(process)) return;
      this.died(process, now);
      return;
    }
    if (now < this.#dueAt) return;
    // What a dead launch left (its JVM outlives a killed shell) must be gone before another uses the checkpoint.
    const left = this.marked();
    if (left.length > 0) {
      signalAll(left.map((p) => p.pgid), left.map((p) => p.pid), 'SIGKILL');
      return;
    }
    // The archiver exits 1 when a topic does not exist: wait for both rather than crash-loop.
    const existing = new Set(await this.admin.listTopics());
    const missing = [this.#spec.recordsTopic, this.#spec.feedbackTopic].filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      this.#state = 'waiting-for-topics';
      if (!this.#waitingLogged) this.log.info({ topics: missing }, `waiting for topics ${missing.join(', ')} before starting the history archiver`);
      this.#waitingLogged = true;
      return;
    }
    if (!this.#timer) return; // stopped meanwhile
    this.launch();
  }

  private launch(): void {
    const archiverId = `ha-${new Date().toISOString().replaceAll(':', '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
    mkdirSync(this.settings.dir, { recursive: true });
    writeFileSync(join(this.settings.dir, `${archiverId}.args.json`), JSON.stringify(historyArchiverArgs(this.config, this.#spec)));
    const started = this.launcher.startHistoryArchiver(this.settings.dir, archiverId, this.#spec);
    this.#process = started;
    this.#state = 'running';
    this.#waitingLogged = false;
    this.log.info({ pid: started.groupPid, historyDir: this.#spec.historyDir, retentionDays: this.#spec.retentionDays, logFile: started.logFile }, 'started the history archiver');
  }

  private died(process: HistoryArchiverProcess, now: number): void {
    this.launcher.kill(process); // whatever of its tree is left
    this.#process = null;
    this.#restarts += 1;
    this.#deaths = now - process.startedAt > HEALTHY_AFTER_MS ? 1 : this.#deaths + 1;
    // The first death restarts at once, later ones in a row back off (as the reconciler does for jobs).
    const delayMs = this.#deaths <= 1 ? 0 : backoffDelayMs(this.#deaths - 1, { initialMs: this.config.orchestrator.backoffInitialMs, maxMs: this.config.orchestrator.backoffMaxMs });
    this.#dueAt = now + delayMs;
    this.#state = 'backoff';
    this.#lastError = this.launcher.lastError(process);
    this.log.warn({ pid: process.groupPid, exitCode: this.launcher.exitCode(process), error: this.#lastError, logFile: process.logFile, restartInMs: delayMs }, 'the history archiver died; restarting it');
  }
}
