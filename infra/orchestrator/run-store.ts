/**
 * Function runs in Redis, under the orchestrator's key prefix:
 *
 *   runs:<id>                  JSON RunRecord; finished ones expire after DIAMOND_RUNS_RESULT_TTL
 *   runs:by-function:<name>    sorted set of run ids by queuedAt (pruned of expired runs when listed)
 *   runs:active                set of the ids of runs not ended (what a restart must settle)
 *   runs:recent                sorted set of every function's latest run ids by queuedAt (the dashboard's list), trimmed to RECENT_RUNS
 *
 * The queue itself lives in the dispatcher's memory, so a run that was queued or running when
 * the orchestrator died cannot go on: `failInterrupted` (at start) marks each failed with a
 * platform error instead of leaving it queued or running forever.
 */
import type { Redis } from 'ioredis';
import type { RunError, RunEvent } from '../../shared/messages.ts';
import type { ParamValue } from './run-params.ts';

export const RUN_STATES = ['queued', 'running', 'finished', 'failed', 'cancelled', 'timed-out'] as const;
export type RunState = (typeof RUN_STATES)[number];
export const ENDED_STATES: ReadonlySet<RunState> = new Set(['finished', 'failed', 'cancelled', 'timed-out']);

/** A run's result as the session answered it (docs/RUNS.md). */
export type RunResult =
  | { readonly kind: 'rows'; readonly columns: readonly { readonly name: string; readonly type: string }[]; readonly rows: readonly unknown[][]; readonly truncated: boolean }
  | { readonly kind: 'value'; readonly value: unknown };

export interface RunRecord {
  readonly id: string;
  /** `usecase.function` */
  readonly function: string;
  readonly usecase: string;
  /** The code version of the use case folder the run used. */
  readonly version: string;
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly state: RunState;
  /** The name of the token that asked for it. */
  readonly by: string;
  readonly queuedAt: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  /** The function session that ran it. */
  readonly session: string | null;
  readonly result: RunResult | null;
  readonly error: RunError | null;
  /** The session's own timings (load_ms, run_ms). */
  readonly timings: Readonly<Record<string, number>> | null;
  /** Its lifecycle so far, for SSE replay. */
  readonly events: readonly { readonly event: RunEvent; readonly at: string }[];
}

const runKey = (id: string): string => `runs:${id}`;
const byFunctionKey = (name: string): string => `runs:by-function:${name}`;
const ACTIVE = 'runs:active';
const RECENT = 'runs:recent';
/** How many runs `recent` can list, across functions. */
const RECENT_RUNS = 200;

export class RunStore {
  /** `redis` carries the orchestrator's key prefix; `resultTtlMs` applies to ended runs. */
  constructor(private readonly redis: Redis, private readonly resultTtlMs: number) {}

  async put(run: RunRecord): Promise<void> {
    const ended = ENDED_STATES.has(run.state);
    const multi = this.redis.multi();
    if (ended) {
      multi.set(runKey(run.id), JSON.stringify(run), 'PX', this.resultTtlMs);
      multi.srem(ACTIVE, run.id);
    } else {
      multi.set(runKey(run.id), JSON.stringify(run));
      multi.sadd(ACTIVE, run.id);
    }
    multi.zadd(byFunctionKey(run.function), Date.parse(run.queuedAt), run.id);
    multi.zadd(RECENT, Date.parse(run.queuedAt), run.id);
    multi.zremrangebyrank(RECENT, 0, -(RECENT_RUNS + 1));
    await multi.exec();
  }

  async get(id: string): Promise<RunRecord | null> {
    const raw = await this.redis.get(runKey(id));
    return raw ? (JSON.parse(raw) as RunRecord) : null;
  }

  /** The latest `limit` runs of a function (newest first); ids whose record expired are dropped from the index. */
  async list(functionName: string, limit = 100): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(byFunctionKey(functionName), 0, limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(...ids.map(runKey));
    const gone = ids.filter((_, i) => raws[i] === null);
    if (gone.length > 0) await this.redis.zrem(byFunctionKey(functionName), ...gone);
    return raws.flatMap((raw) => (raw ? [JSON.parse(raw) as RunRecord] : []));
  }

  /** The latest `limit` runs of every function (newest first), what the dashboard lists; expired ones are dropped from the index. */
  async recent(limit = 20): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(RECENT, 0, Math.min(limit, RECENT_RUNS) - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(...ids.map(runKey));
    const gone = ids.filter((_, i) => raws[i] === null);
    if (gone.length > 0) await this.redis.zrem(RECENT, ...gone);
    return raws.flatMap((raw) => (raw ? [JSON.parse(raw) as RunRecord] : []));
  }

  /** How many runs are queued and running now, across functions (what the runs gauge shows). */
  async activeCounts(): Promise<{ queued: number; running: number }> {
    const ids = await this.redis.smembers(ACTIVE);
    const raws = ids.length === 0 ? [] : await this.redis.mget(...ids.map(runKey));
    const states = raws.flatMap((raw) => (raw ? [(JSON.parse(raw) as RunRecord).state] : []));
    return { queued: states.filter((s) => s === 'queued').length, running: states.filter((s) => s === 'running').length };
  }

  /**
   * At start: every run left queued or running by an orchestrator that died is failed with a
   * platform error (its queue and its session died with it). Returns the runs so failed.
   */
  async failInterrupted(now: Date = new Date()): Promise<RunRecord[]> {
    const failed: RunRecord[] = [];
    for (const id of await this.redis.smembers(ACTIVE)) {
      const run = await this.get(id);
      if (!run || ENDED_STATES.has(run.state)) {
        await this.redis.srem(ACTIVE, id);
        continue;
      }
      const at = now.toISOString();
      const ended: RunRecord = {
        ...run, state: 'failed', endedAt: at,
        error: { code: 'platform', message: `the orchestrator stopped while the run was ${run.state}; run it again` },
        events: [...run.events, { event: 'failed', at }],
      };
      await this.put(ended);
      failed.push(ended);
    }
    return failed;
  }
}
