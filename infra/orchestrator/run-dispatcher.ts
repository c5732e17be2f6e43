/**
 * RunDispatcher: the queue and the concurrency limit of each function, and a run's life:
 *
 *   queued ──(a slot and a session)──▶ running ──▶ finished | failed | cancelled | timed-out
 *     │                                   │
 *     ├─ DELETE ─▶ cancelled              ├─ DELETE ─▶ POST cancel to the session ─▶ cancelled
 *     └─ start_timeout ─▶ timed-out       └─ run_timeout ─▶ POST cancel; not freed within the kill grace
 *                                                            ─▶ session killed and replaced ─▶ timed-out
 *
 * Each change is written to the run store first, then published on diamond.runs and to local
 * subscribers (the SSE route). Sessions come from a SessionPool (function-sessions.ts in
 * production, a fake in the unit tests); one run failing or being cancelled never touches another.
 */
import { randomUUID } from 'node:crypto';
import { ApiError, errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { RunError, RunEvent, RunEventFields } from '../../shared/messages.ts';
import type { ResolvedFunction } from './function-catalog.ts';
import type { ParamValue } from './run-params.ts';
import { ENDED_STATES, type RunRecord, type RunResult, type RunState, type RunStore } from './run-store.ts';

/** What a session answers to POST /runs (docs/RUNS.md). */
export type SessionAnswer =
  | { readonly state: 'finished'; readonly result: RunResult; readonly timings?: Readonly<Record<string, number>> }
  | { readonly state: 'failed'; readonly error: RunError }
  | { readonly state: 'cancelled' };

export interface RunRequest {
  readonly run_id: string;
  readonly usecase: string;
  readonly folder: string;
  readonly function: string;
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly max_rows: number;
  readonly timeout_ms: number;
}

export interface SessionHandle {
  readonly id: string;
  /** POST /runs; rejects when the session cannot be reached or `signal` aborts. */
  run(request: RunRequest, signal: AbortSignal): Promise<SessionAnswer>;
  /** POST /runs/<id>/cancel; never throws. */
  cancel(runId: string): Promise<void>;
}

export interface SessionPool {
  acquire(exclusive: boolean): Promise<SessionHandle>;
  release(session: SessionHandle): void;
  replace(session: SessionHandle, reason: string): void;
}

export interface RunObserver {
  /** A run reached `state` (every state, queued included). */
  countRun(functionName: string, state: RunState): void;
  /** An ended run's time from started (or queued, when it never started) to its end. */
  observeDuration(functionName: string, seconds: number): void;
}

export type RunEventPublisher = (event: RunEvent, fields: RunEventFields) => Promise<void>;

export interface DispatcherDeps {
  readonly store: RunStore;
  readonly sessions: SessionPool;
  readonly publish: RunEventPublisher;
  readonly observer?: RunObserver;
  readonly killGraceMs: number;
  /** Runs waiting per function beyond which POST is refused (503). */
  readonly queueLimit: number;
  readonly log: Pick<Logger, 'info' | 'warn'>;
}

/** A run this process is responsible for (queued or running). */
interface Active {
  run: RunRecord;
  readonly fn: ResolvedFunction;
  startTimer: NodeJS.Timeout | null;
  runTimer: NodeJS.Timeout | null;
  graceTimer: NodeJS.Timeout | null;
  session: SessionHandle | null;
  /** Why the run must end, once decided (timeout, DELETE): the session's answer is then read in that light. */
  ending: { state: 'cancelled' | 'timed-out'; error: RunError | null; by?: string } | null;
  readonly abort: AbortController;
}

interface FunctionQueue {
  readonly waiting: string[];
  running: number;
}

export type RunListener = (run: RunRecord, event: RunEvent) => void;

export class RunDispatcher {
  readonly #active = new Map<string, Active>();
  readonly #queues = new Map<string, FunctionQueue>();
  readonly #listeners = new Map<string, Set<RunListener>>();
  #closed = false;

  constructor(private readonly deps: DispatcherDeps) {}

  /** Queues a run of `fn` with checked params; answers once it is stored as queued. */
  async submit(fn: ResolvedFunction, params: Readonly<Record<string, ParamValue>>, by: string): Promise<RunRecord> {
    if (this.#closed) throw new ApiError('DIAMOND_SERVICE_UNAVAILABLE', 'the orchestrator is stopping', 'retry once it is back');
    const queue = this.queueOf(fn.name);
    if (queue.waiting.length >= this.deps.queueLimit) {
      throw new ApiError('DIAMOND_RUN_QUEUE_FULL', `${fn.name} has ${queue.waiting.length} runs waiting already`, 'retry later, or raise DIAMOND_RUNS_QUEUE_LIMIT / the function\'s concurrency', { 'retry-after': '5' });
    }
    const at = new Date().toISOString();
    const run: RunRecord = {
      id: randomUUID(), function: fn.name, usecase: fn.usecase, version: fn.version, params, state: 'queued', by,
      queuedAt: at, startedAt: null, endedAt: null, session: null, result: null, error: null, timings: null, events: [{ event: 'queued', at }],
    };
    await this.deps.store.put(run);
    const active: Active = { run, fn, startTimer: null, runTimer: null, graceTimer: null, session: null, ending: null, abort: new AbortController() };
    this.#active.set(run.id, active);
    active.startTimer = setTimeout(() => void this.startTimedOut(active), fn.spec.limits.start_timeout_ms);
    queue.waiting.push(run.id);
    this.deps.observer?.countRun(fn.name, 'queued');
    await this.announce(active, 'queued', { by });
    this.pump(fn.name);
    return this.#active.get(run.id)?.run ?? run;
  }

  /** DELETE: a queued run is removed, a running one cancelled in its session. */
  async cancel(id: string, by: string): Promise<RunRecord> {
    const active = this.#active.get(id);
    if (!active) {
      const stored = await this.deps.store.get(id);
      if (!stored) throw unknownRun(id);
      if (ENDED_STATES.has(stored.state)) throw new ApiError('DIAMOND_RUN_ENDED', `run ${id} has ended already (${stored.state})`, 'GET /v1/runs/<id> shows its result or error');
      throw new ApiError('DIAMOND_RUN_ENDED', `run ${id} is ${stored.state} but no longer supervised here`, 'it is failed when the orchestrator restarts');
    }
    if (active.ending) return active.run;
    if (active.run.state === 'queued') {
      const queue = this.queueOf(active.fn.name);
      const at = queue.waiting.indexOf(id);
      if (at >= 0) queue.waiting.splice(at, 1);
      if (!active.session) {
        await this.settle(active, 'cancelled', { error: null, by });
        return active.run;
      }
    }
    active.ending = { state: 'cancelled', error: null, by };
    if (active.session) this.freeOrKill(active, active.session, 'a cancelled run was not freed within the kill grace');
    else active.abort.abort(); // still acquiring its session
    return active.run;
  }

  /** The run as stored (this process's copy while it is active). */
  async get(id: string): Promise<RunRecord> {
    const run = this.#active.get(id)?.run ?? (await this.deps.store.get(id));
    if (!run) throw unknownRun(id);
    return run;
  }

  /** The run once it ended, or as it is after `waitMs`. */
  async waitFor(id: string, waitMs: number): Promise<RunRecord> {
    const run = await this.get(id);
    if (ENDED_STATES.has(run.state) || waitMs <= 0) return run;
    return new Promise((resolve) => {
      const done = (latest: RunRecord): void => {
        clearTimeout(timer);
        unsubscribe();
        resolve(latest);
      };
      const timer = setTimeout(() => void this.get(id).then(done, () => done(run)), waitMs);
      const unsubscribe = this.subscribe(id, (latest) => {
        if (ENDED_STATES.has(latest.state)) done(latest);
      });
    });
  }

  /** Local subscribers of one run's events (the SSE route); returns the unsubscribe. */
  subscribe(id: string, listener: RunListener): () => void {
    let set = this.#listeners.get(id);
    if (!set) this.#listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(id);
    };
  }

  /** Whether this process still supervises the run (its SSE stream stays open while it does). */
  isActive(id: string): boolean {
    return this.#active.has(id);
  }

  /** Shutdown: every active run fails with a platform error (its queue dies with the process). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const active of [...this.#active.values()]) {
      active.abort.abort();
      await this.settle(active, 'failed', { error: { code: 'platform', message: 'the orchestrator stopped during the run; run it again' } });
    }
  }

  private queueOf(name: string): FunctionQueue {
    let queue = this.#queues.get(name);
    if (!queue) this.#queues.set(name, (queue = { waiting: [], running: 0 }));
    return queue;
  }

  /** Starts the next waiting runs of `name` while it has free slots. */
  private pump(name: string): void {
    const queue = this.queueOf(name);
    while (queue.waiting.length > 0) {
      const active = this.#active.get(queue.waiting[0]!);
      if (!active) {
        queue.waiting.shift();
        continue;
      }
      if (queue.running >= active.fn.spec.concurrency) return;
      queue.waiting.shift();
      queue.running += 1;
      void this.execute(active).finally(() => {
        queue.running -= 1;
        this.pump(name);
      });
    }
  }

  private async execute(active: Active): Promise<void> {
    const { fn } = active;
    let session: SessionHandle;
    try {
      session = await this.deps.sessions.acquire(fn.spec.exclusive);
    } catch (error) {
      if (!active.ending && !this.isEnded(active)) await this.settle(active, 'failed', { error: { code: 'platform', message: `no function session: ${errorMessage(error)}` } });
      else if (active.ending) await this.settle(active, active.ending.state, active.ending);
      return;
    }
    if (this.isEnded(active) || active.ending) {
      // Timed out or cancelled while the session was starting.
      this.deps.sessions.release(session);
      if (active.ending && !this.isEnded(active)) await this.settle(active, active.ending.state, active.ending);
      return;
    }
    active.session = session;
    if (active.startTimer) clearTimeout(active.startTimer);
    const startedAt = new Date();
    const queuedMs = Math.max(0, startedAt.getTime() - Date.parse(active.run.queuedAt));
    await this.update(active, { state: 'running', startedAt: startedAt.toISOString(), session: session.id }, 'started', { session: session.id, queuedMs });
    this.deps.observer?.countRun(fn.name, 'running');
    active.runTimer = setTimeout(() => {
      if (active.ending) return;
      active.ending = { state: 'timed-out', error: { code: 'run_timeout', message: `the run took longer than its run_timeout (${fn.spec.limits.run_timeout_ms} ms) and was cancelled` } };
      this.freeOrKill(active, session, 'a run over its timeout was not freed within the kill grace');
    }, fn.spec.limits.run_timeout_ms);
    let replaced = false;
    try {
      const answer = await session.run({
        run_id: active.run.id, usecase: fn.usecase, folder: fn.folder, function: fn.function, params: active.run.params,
        max_rows: fn.spec.limits.max_rows, timeout_ms: fn.spec.limits.run_timeout_ms,
      }, active.abort.signal);
      const ending = endingOf(active); // a timer or a DELETE may have set it meanwhile
      if (ending) await this.settle(active, ending.state, ending);
      else if (answer.state === 'finished') await this.settle(active, 'finished', { result: answer.result, timings: answer.timings ?? null });
      else if (answer.state === 'failed') await this.settle(active, 'failed', { error: answer.error });
      else await this.settle(active, 'cancelled', { error: null });
    } catch (error) {
      const ending = endingOf(active);
      if (ending) {
        replaced = active.abort.signal.aborted; // the grace ran out: the session was killed
        await this.settle(active, ending.state, ending);
      } else {
        replaced = true;
        this.deps.sessions.replace(session, `a run could not be served: ${errorMessage(error)}`);
        await this.settle(active, 'failed', { error: { code: 'platform', message: `the function session failed during the run: ${errorMessage(error)}` } });
      }
    } finally {
      if (!replaced) this.deps.sessions.release(session);
    }
  }

  /** Asks the session to cancel the run; kills and replaces it when the run is not freed within the grace. */
  private freeOrKill(active: Active, session: SessionHandle, reason: string): void {
    void session.cancel(active.run.id);
    active.graceTimer ??= setTimeout(() => {
      if (this.isEnded(active)) return;
      active.abort.abort();
      this.deps.sessions.replace(session, reason);
    }, this.deps.killGraceMs);
  }

  private async startTimedOut(active: Active): Promise<void> {
    if (active.session || this.isEnded(active) || active.ending) return;
    const queue = this.queueOf(active.fn.name);
    const at = queue.waiting.indexOf(active.run.id);
    if (at >= 0) queue.waiting.splice(at, 1);
    active.abort.abort();
    await this.settle(active, 'timed-out', { error: { code: 'start_timeout', message: `the run did not start within its start_timeout (${active.fn.spec.limits.start_timeout_ms} ms)` } });
  }

  private isEnded(active: Active): boolean {
    return ENDED_STATES.has(active.run.state);
  }

  private async settle(active: Active, state: 'finished' | 'failed' | 'cancelled' | 'timed-out', outcome: { result?: RunResult; timings?: Readonly<Record<string, number>> | null; error?: RunError | null; by?: string }): Promise<void> {
    if (this.isEnded(active)) return;
    for (const timer of [active.startTimer, active.runTimer, active.graceTimer]) if (timer) clearTimeout(timer);
    const endedAt = new Date();
    const from = Date.parse(active.run.startedAt ?? active.run.queuedAt);
    const durationMs = Math.max(0, endedAt.getTime() - from);
    const error = outcome.error ?? null;
    this.#active.delete(active.run.id); // before anyone hears of the end: a DELETE then sees it ended
    await this.update(active, { state, endedAt: endedAt.toISOString(), result: outcome.result ?? null, timings: outcome.timings ?? null, error }, state, {
      durationMs, ...(error ? { error } : {}), ...(outcome.by ? { by: outcome.by } : {}), ...(state === 'finished' && isSmall(outcome.result) ? { result: outcome.result } : {}),
    });
    this.deps.observer?.countRun(active.fn.name, state);
    this.deps.observer?.observeDuration(active.fn.name, durationMs / 1000);
    this.deps.log.info({ run: active.run.id, function: active.fn.name, state, durationMs, ...(error ? { error: error.code } : {}) }, 'run ended');
  }

  private async update(active: Active, change: Partial<RunRecord>, event: RunEvent, fields: Omit<RunEventFields, 'run' | 'function' | 'usecase'>): Promise<void> {
    const at = new Date().toISOString();
    active.run = { ...active.run, ...change, events: [...active.run.events, { event, at }] };
    try {
      await this.deps.store.put(active.run);
    } catch (error) {
      this.deps.log.warn({ run: active.run.id, error: errorMessage(error) }, 'could not store a run change');
    }
    await this.announce(active, event, fields);
  }

  private async announce(active: Active, event: RunEvent, fields: Omit<RunEventFields, 'run' | 'function' | 'usecase'>): Promise<void> {
    for (const listener of this.#listeners.get(active.run.id) ?? []) listener(active.run, event);
    try {
      await this.deps.publish(event, { run: active.run.id, function: active.fn.name, usecase: active.fn.usecase, ...fields });
    } catch (error) {
      this.deps.log.warn({ run: active.run.id, event, error: errorMessage(error) }, 'could not publish a run event');
    }
  }
}

function endingOf(active: Active): Active['ending'] {
  return active.ending;
}

function unknownRun(id: string): ApiError {
  return new ApiError('DIAMOND_RUN_UNKNOWN', `no run ${id}`, 'it never existed, or its result expired (DIAMOND_RUNS_RESULT_TTL); list runs with GET /v1/runs?function=<usecase.function>');
}

/** Results go on the topic only when small; the run record always keeps them. */
function isSmall(result: RunResult | undefined): boolean {
  return result !== undefined && JSON.stringify(result).length <= 16 * 1024;
}
