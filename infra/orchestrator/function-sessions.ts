/**
 * Function sessions: Spark drivers serving function runs (docs/RUNS.md, the session protocol),
 * each started by the launcher exactly as a job is (launcher.ts startFunctionSession: spark-submit,
 * job user, tenant environment, its own process group).
 *
 *   acquire(shared)    → one of DIAMOND_RUNS_SESSIONS shared sessions (the least busy; started on first use)
 *   acquire(exclusive) → a session of its own, stopped when the run releases it
 *   replace(session)   → killed (group and marked processes) and forgotten; the next acquire starts another
 *   stopAll()          → on shutdown: SIGTERM, then SIGKILL after the kill grace
 *
 * A session is ready once its session file (port, pid) exists; one that dies, or does not write
 * it within DIAMOND_RUNS_SESSION_START_TIMEOUT, is killed and forgotten, and its waiting acquires
 * fail. A supervision tick forgets dead sessions, so the next run starts a fresh one.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { escapeRegExp, findProcesses, signalAll } from '../../shared/process-group.ts';
import type { FunctionSessionProcess, JobLauncher } from './launcher.ts';
import type { RunRequest, SessionAnswer, SessionHandle, SessionPool } from './run-dispatcher.ts';

export interface FunctionSession {
  readonly id: string;
  readonly exclusive: boolean;
  readonly process: FunctionSessionProcess;
  /** http://127.0.0.1:<port>, once ready. */
  readonly url: string;
  /** The bearer secret every request to it carries. */
  readonly secret: string;
  /** Runs in flight on it. */
  inFlight: number;
}

interface Starting {
  readonly id: string;
  readonly exclusive: boolean;
  readonly process: FunctionSessionProcess;
  /** Set right after the entry is made (its wait needs the entry). */
  ready: Promise<FunctionSession> | null;
  session: FunctionSession | null;
}

const POLL_MS = 100;
const SUPERVISE_MS = 1000;

export class FunctionSessions {
  readonly #sessions = new Map<string, Starting>();
  readonly #timer: NodeJS.Timeout;
  #stopping = false;

  constructor(
    private readonly config: DiamondConfig,
    private readonly launcher: JobLauncher,
    private readonly dir: string,
    private readonly log: Pick<Logger, 'info' | 'warn'>,
  ) {
    this.#timer = setInterval(() => this.supervise(), SUPERVISE_MS);
    this.#timer.unref();
    this.reapOrphans();
  }

  /**
   * Sessions of a previous orchestrator of this folder that was killed (not stopped) are
   * nobody's now: their runs were failed at start (run-store.ts), so they are killed.
   */
  private reapOrphans(): void {
    const orphans = findProcesses(new RegExp(`${escapeRegExp(this.dir)}/fs-[^/\\s]+\\.driver\\.pid`));
    if (orphans.length === 0) return;
    this.log.warn({ pids: orphans.map((p) => p.pid) }, 'killing function sessions a previous orchestrator left running');
    signalAll(orphans.map((p) => p.pgid), orphans.map((p) => p.pid), 'SIGKILL');
  }

  /** A ready session: a shared one (least busy), or for `exclusive` one of its own. */
  async acquire(exclusive: boolean): Promise<FunctionSession> {
    if (this.#stopping) throw new DiamondError('the orchestrator is stopping', { code: 'DIAMOND_SERVICE_UNAVAILABLE', hint: 'retry once it is back' });
    let entry: Starting | undefined;
    if (!exclusive) {
      const shared = [...this.#sessions.values()].filter((s) => !s.exclusive);
      if (shared.length < this.config.runs.sessionsPerKey) entry = this.start(false);
      else entry = shared.sort((a, b) => (a.session?.inFlight ?? 0) - (b.session?.inFlight ?? 0))[0];
    }
    entry ??= this.start(true);
    const session = await entry.ready!;
    session.inFlight += 1;
    return session;
  }

  /** A run is done with `session`: an exclusive one is stopped. */
  release(session: FunctionSession): void {
    session.inFlight = Math.max(0, session.inFlight - 1);
    if (session.exclusive) this.stop(session.id, 'its exclusive run ended');
  }

  /** Kills `session` (it did not free a run in time, or it broke); the next acquire starts another. */
  replace(session: FunctionSession, reason: string): void {
    const entry = this.#sessions.get(session.id);
    if (!entry) return;
    this.log.warn({ session: session.id, pid: entry.process.groupPid, reason }, 'killing a function session; the next run starts a new one');
    this.launcher.kill(entry.process);
    this.#sessions.delete(session.id);
  }

  /** Sessions as the control API shows them. */
  list(): { id: string; exclusive: boolean; ready: boolean; inFlight: number; pid: number }[] {
    return [...this.#sessions.values()].map((s) => ({ id: s.id, exclusive: s.exclusive, ready: s.session !== null, inFlight: s.session?.inFlight ?? 0, pid: s.process.groupPid }));
  }

  /** SIGTERM to every session, SIGKILL to what is left after the kill grace. */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    const entries = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const entry of entries) this.launcher.signalLaunch(entry.process, 'SIGTERM');
    const deadline = Date.now() + this.config.runs.killGraceMs;
    while (Date.now() < deadline && entries.some((e) => this.launcher.isRunning(e.process))) await sleep(POLL_MS);
    for (const entry of entries) this.launcher.kill(entry.process);
  }

  private start(exclusive: boolean): Starting {
    const id = `fs-${new Date().toISOString().replaceAll(':', '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
    const secret = randomBytes(24).toString('base64url');
    const process = this.launcher.startFunctionSession(this.dir, id, {
      historyDir: this.config.runs.historyDir, usecaseRoots: this.config.usecases.roots, secret, sqlCacheDays: this.config.sql.cacheDays, sqlRefreshMs: this.config.sql.refreshMs,
    });
    this.log.info({ session: id, pid: process.groupPid, exclusive, logFile: process.logFile }, 'starting a function session');
    const entry: Starting = { id, exclusive, process, session: null, ready: null };
    this.#sessions.set(id, entry);
    entry.ready = this.waitReady(entry, secret);
    entry.ready.catch(() => undefined); // an acquire that awaits it sees the error; nobody else must crash on it
    return entry;
  }

  private async waitReady(entry: Starting, secret: string): Promise<FunctionSession> {
    const started = Date.now();
    const deadline = started + this.config.runs.sessionStartTimeoutMs;
    while (Date.now() < deadline) {
      const port = readPort(entry.process.sessionFile);
      if (port !== null) {
        const session: FunctionSession = { id: entry.id, exclusive: entry.exclusive, process: entry.process, url: `http://127.0.0.1:${port}`, secret, inFlight: 0 };
        entry.session = session;
        this.log.info({ session: entry.id, port, startMs: Date.now() - started }, 'function session ready');
        return session;
      }
      if (this.#stopping) break;
      if (!this.launcher.isRunning(entry.process)) {
        this.#sessions.delete(entry.id);
        throw new DiamondError(`the function session ${entry.id} exited before it was ready: ${this.launcher.lastError(entry.process)}`, {
          code: 'DIAMOND_SERVICE_START_FAILED', hint: `see its log ${entry.process.logFile}`,
        });
      }
      await sleep(POLL_MS);
    }
    this.launcher.kill(entry.process);
    this.#sessions.delete(entry.id);
    throw new DiamondError(`the function session ${entry.id} was not ready within ${this.config.runs.sessionStartTimeoutMs} ms`, {
      code: 'DIAMOND_SERVICE_START_FAILED', hint: `see its log ${entry.process.logFile}; raise DIAMOND_RUNS_SESSION_START_TIMEOUT on a slow machine`,
    });
  }

  private stop(id: string, reason: string): void {
    const entry = this.#sessions.get(id);
    if (!entry) return;
    this.#sessions.delete(id);
    this.log.info({ session: id, reason }, 'stopping a function session');
    this.launcher.signalLaunch(entry.process, 'SIGTERM');
    const timer = setTimeout(() => this.launcher.kill(entry.process), this.config.runs.killGraceMs);
    timer.unref();
  }

  /** Forgets ready sessions that died (a starting one is watched by its own wait). */
  private supervise(): void {
    for (const entry of [...this.#sessions.values()]) {
      if (entry.session && !this.launcher.isRunning(entry.process)) {
        this.log.warn({ session: entry.id, exitCode: this.launcher.exitCode(entry.process), error: this.launcher.lastError(entry.process), logFile: entry.process.logFile }, 'a function session died; the next run starts a new one');
        this.launcher.kill(entry.process); // whatever of its tree is left
        this.#sessions.delete(entry.id);
      }
    }
  }
}

/** The port of a session file written whole (by rename); null before it exists. */
function readPort(sessionFile: string): number | null {
  if (!existsSync(sessionFile)) return null;
  try {
    const parsed = JSON.parse(readFileSync(sessionFile, 'utf8')) as { port?: unknown };
    return typeof parsed.port === 'number' && Number.isInteger(parsed.port) ? parsed.port : null;
  } catch {
    return null;
  }
}

/** The dispatcher's view of the sessions: handles that speak the session protocol over HTTP. */
export class FunctionSessionPool implements SessionPool {
  readonly #handles = new WeakMap<SessionHandle, FunctionSession>();

  constructor(private readonly sessions: FunctionSessions) {}

  async acquire(exclusive: boolean): Promise<SessionHandle> {
    const session = await this.sessions.acquire(exclusive);
    const headers = { authorization: `Bearer ${session.secret}`, 'content-type': 'application/json' };
    const handle: SessionHandle = {
      id: session.id,
      run: async (request: RunRequest, signal: AbortSignal): Promise<SessionAnswer> => {
        const response = await fetch(`${session.url}/runs`, { method: 'POST', headers, body: JSON.stringify(request), signal });
        const text = await response.text();
        if (!response.ok) throw new Error(`the session answered ${response.status}: ${text.slice(0, 500)}`);
        return JSON.parse(text) as SessionAnswer;
      },
      cancel: async (runId: string): Promise<void> => {
        await fetch(`${session.url}/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST', headers, body: '{}', signal: AbortSignal.timeout(5000) }).then((r) => r.text(), () => undefined);
      },
    };
    this.#handles.set(handle, session);
    return handle;
  }

  release(handle: SessionHandle): void {
    const session = this.#handles.get(handle);
    if (session) this.sessions.release(session);
  }

  replace(handle: SessionHandle, reason: string): void {
    const session = this.#handles.get(handle);
    if (session) this.sessions.replace(session, reason);
  }
}
