/**
 * Interactive SQL (docs/RUNS.md, "Interactive SQL"): a read-only query over the history,
 * answered by a shared function session (POST /sql of the session protocol) from its cached
 * recent window. Queries are not runs: no queue record, no events, nothing kept; a slot limit
 * (DIAMOND_SQL_CONCURRENCY) keeps them from taking every core from the runs, and the time a
 * query waits for a slot counts against its time limit.
 *
 *   POST /v1/sql {sql, limit?} → 200 {query: {id, columns, rows, truncated, timings, cache}}
 *                              → 400 DIAMOND_SQL_REFUSED (not one read-only query) | DIAMOND_SQL_INVALID (Spark's message)
 *                              → 504 DIAMOND_SQL_TIMED_OUT (cancelled at DIAMOND_SQL_TIMEOUT)
 */
import { randomUUID } from 'node:crypto';
import type { SqlSettings } from '../../shared/config.ts';
import { ApiError, DiamondError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { FunctionSession } from './function-sessions.ts';

export interface SqlColumn {
  readonly name: string;
  readonly type: string;
}

export interface SqlAnswer {
  readonly id: string;
  readonly columns: readonly SqlColumn[];
  readonly rows: readonly (readonly unknown[])[];
  readonly truncated: boolean;
  /** waitMs: for a slot and a session; runMs: the session's; totalMs: what the caller waited. */
  readonly timings: { readonly waitMs: number; readonly runMs: number; readonly totalMs: number };
  /** The cached window the views `records` and `feedback` hold, and when it was last rebuilt. */
  readonly cache: { readonly days: number; readonly refreshedAt: string | null };
}

/** What a session answers to POST /sql. */
type SessionSqlAnswer =
  | { readonly state: 'finished'; readonly result: { readonly columns: SqlColumn[]; readonly rows: unknown[][]; readonly truncated: boolean }; readonly timings: { readonly run_ms: number }; readonly cache: { readonly days: number; readonly refreshed_at: number | null } }
  | { readonly state: 'failed'; readonly error: { readonly code: string; readonly message: string } }
  | { readonly state: 'cancelled' | 'timed-out' };

/** The sessions as SQL needs them: a shared one to borrow, given back after. */
export interface SqlSessions {
  acquire(exclusive: false): Promise<FunctionSession>;
  release(session: FunctionSession): void;
}

/** A counting semaphore whose waiters give up at a deadline. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async take(deadline: number): Promise<boolean> {
    if (this.#free > 0) {
      this.#free -= 1;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(wake), 1);
        resolve(false);
      }, Math.max(0, deadline - Date.now()));
      this.#waiting.push(wake);
    });
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free += 1;
  }
}

export class SqlQueries {
  readonly #slots: Slots;

  constructor(
    private readonly sessions: SqlSessions,
    private readonly settings: SqlSettings,
    private readonly log: Pick<Logger, 'info' | 'warn'>,
  ) {
    this.#slots = new Slots(settings.concurrency);
  }

  /** Runs `sql` on a shared session; `limit` rows at most (capped by DIAMOND_SQL_MAX_ROWS). */
  async query(sql: string, limit: number | null, by: string): Promise<SqlAnswer> {
    const id = `sql-${randomUUID()}`;
    const began = Date.now();
    const deadline = began + this.settings.timeoutMs;
    const maxRows = Math.min(limit ?? this.settings.maxRows, this.settings.maxRows);
    if (!(await this.#slots.take(deadline))) throw timedOut(this.settings.timeoutMs, 'waiting for a slot');
    const slotWaitMs = Date.now() - began;
    let session: FunctionSession | null = null;
    try {
      // A cold session start is not the query's time (DIAMOND_RUNS_SESSION_START_TIMEOUT bounds it).
      session = await this.sessions.acquire(false);
      const waitMs = Date.now() - began;
      const timeoutMs = Math.max(1, this.settings.timeoutMs - slotWaitMs);
      const answer = await this.ask(session, { query_id: id, sql, max_rows: maxRows, timeout_ms: timeoutMs }, timeoutMs);
      this.log.info({ query: id, by, state: answer.state, ms: Date.now() - began }, 'sql query');
      if (answer.state === 'finished') {
        const { columns, rows, truncated } = answer.result;
        const refreshed = answer.cache.refreshed_at;
        return {
          id, columns, rows, truncated,
          timings: { waitMs, runMs: answer.timings.run_ms, totalMs: Date.now() - began },
          cache: { days: answer.cache.days, refreshedAt: refreshed === null ? null : new Date(refreshed * 1000).toISOString() },
        };
      }
      if (answer.state === 'failed') {
        if (answer.error.code === 'sql_refused') throw new ApiError('DIAMOND_SQL_REFUSED', answer.error.message, 'send one SELECT (or WITH … SELECT) over the views records, feedback, records_all and feedback_all');
        if (answer.error.code === 'bad_sql') throw new ApiError('DIAMOND_SQL_INVALID', answer.error.message, 'fix the query; the views are records, feedback (recent, cached), records_all and feedback_all');
        throw new DiamondError(`the function session failed the query: ${answer.error.message}`, { code: 'DIAMOND_INTERNAL' });
      }
      throw timedOut(this.settings.timeoutMs, 'running');
    } finally {
      if (session) this.sessions.release(session);
      this.#slots.give();
    }
  }

  private async ask(session: FunctionSession, body: Record<string, unknown>, timeoutMs: number): Promise<SessionSqlAnswer> {
    const headers = { authorization: `Bearer ${session.secret}`, 'content-type': 'application/json' };
    // The session cancels the query itself at timeout_ms; the margin covers its answer.
    const signal = AbortSignal.timeout(timeoutMs + 5000);
    try {
      const response = await fetch(`${session.url}/sql`, { method: 'POST', headers, body: JSON.stringify(body), signal });
      const text = await response.text();
      if (!response.ok) throw new DiamondError(`the function session answered ${response.status}: ${text.slice(0, 500)}`, { code: 'DIAMOND_INTERNAL' });
      return JSON.parse(text) as SessionSqlAnswer;
    } catch (error) {
      if (!signal.aborted) throw error;
      this.log.warn({ query: body['query_id'], session: session.id }, 'a function session did not answer a query in time; cancelling it');
      await fetch(`${session.url}/sql/${encodeURIComponent(String(body['query_id']))}/cancel`, { method: 'POST', headers, body: '{}', signal: AbortSignal.timeout(5000) }).then((r) => r.text(), () => undefined);
      return { state: 'timed-out' };
    }
  }
}

function timedOut(timeoutMs: number, phase: string): ApiError {
  return new ApiError('DIAMOND_SQL_TIMED_OUT', `the query ran out of its ${timeoutMs} ms (${phase}) and was cancelled`,
    'narrow it (a WHERE on day or event_time, a LIMIT), query the cached views records and feedback rather than *_all, or raise DIAMOND_SQL_TIMEOUT');
}
