/**
 * The customer feedback API (node:http, no framework).
 *
 *   GET /v1/feedback?since=&usecase=&limit=&cursor=   that customer's feedback, oldest first
 *   GET /v1/feedback/stream?usecase=                  new feedback as server-sent events
 *   GET /healthz, GET /metrics
 *
 * Every /v1 request needs `Authorization: Bearer <key>` (401 otherwise). The customer is
 * taken from the key, never from the request, and every query is restricted to that
 * customer's partitions: ids, filters or cursors cannot reach another customer's rows.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { CassandraClient } from '../shared/cassandra.ts';
import type { Logger } from '../shared/logger.ts';
import type { Feedback } from '../shared/schemas.ts';
import { utcDay } from './cassandra-rows.ts';
import type { CustomerKeys } from './customer-keys.ts';
import { CursorCodec, type CursorPosition } from './feedback-cursor.ts';
import type { LiveFeed } from './live-feed.ts';
import type { Metrics } from './metrics.ts';
import { RETENTION_SECONDS } from './migrations.ts';

export interface FeedbackApiOptions {
  readonly cassandra: CassandraClient;
  readonly keyspace: string;
  readonly customers: CustomerKeys;
  /** Holds the cursor signing secret. */
  readonly redis: Redis;
  readonly live: LiveFeed;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

const DAY_MS = 24 * 3600 * 1000;
const MAX_LIMIT = 1000;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  response.end(text);
}

function parseSince(text: string | null, now: number): number {
  const oldest = now - RETENTION_SECONDS * 1000;
  if (text === null || text === '') return oldest;
  const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(value)) throw new HttpError(400, 'since must be an ISO-8601 time or epoch milliseconds');
  return Math.max(value, oldest);
}

function parseLimit(text: string | null): number {
  if (text === null || text === '') return 100;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > MAX_LIMIT) throw new HttpError(400, `limit must be an integer from 1 to ${MAX_LIMIT}`);
  return value;
}

function toFeedbackJson(row: { get(name: string): unknown }): Feedback {
  const time = (name: string): number => (row.get(name) as Date).getTime();
  return {
    feedback_id: row.get('feedback_id') as string,
    customer_id: row.get('customer_id') as string,
    usecase: row.get('usecase') as string,
    variant: row.get('variant') as string,
    version: (row.get('version') as string | null) ?? '',
    kind: (row.get('kind') as string | null) ?? '',
    severity: (row.get('severity') as string | null) ?? '',
    score: row.get('score') as number | null,
    message: (row.get('message') as string | null) ?? '',
    details: (row.get('details') as Record<string, string> | null) ?? {},
    record_ids: (row.get('record_ids') as string[] | null) ?? [],
    event_time: time('event_time'),
    produced_at: time('produced_at'),
  };
}

export function createFeedbackApi(options: FeedbackApiOptions): Server {
  const { cassandra, keyspace, customers, live, metrics, logger } = options;
  const log = logger.child({ component: 'feedback-api' });
  let codec: Promise<CursorCodec> | undefined;
  const cursors = (): Promise<CursorCodec> => (codec ??= CursorCodec.fromRedis(options.redis).catch((error: unknown) => { codec = undefined; throw error; }));
  const columns = 'feedback_id, customer_id, usecase, variant, version, kind, severity, score, message, details, record_ids, event_time, produced_at';

  async function authenticate(request: IncomingMessage): Promise<string> {
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    const customer = match?.[1] ? await customers.authenticate(match[1]) : null;
    if (!customer) throw new HttpError(401, 'a valid API key is required: Authorization: Bearer <key> (create one with `diamond customer add <id>`)');
    return customer;
  }

  async function listFeedback(customer: string, params: URLSearchParams): Promise<{ items: Feedback[]; next_cursor: string | null }> {
    const limit = parseLimit(params.get('limit'));
    const now = Date.now();
    let position: CursorPosition | null = null;
    let since: number;
    let usecase = params.get('usecase') || null;
    const cursorText = params.get('cursor');
    if (cursorText) {
      position = (await cursors()).decode(cursorText);
      // A cursor only continues the query it came from, for the customer it was issued to.
      if (!position || position.customer !== customer) throw new HttpError(400, 'cursor is not valid for this API key; start again without cursor');
      if ((params.has('usecase') && usecase !== position.usecase) || (params.has('since') && parseSince(params.get('since'), now) !== position.since)) {
        throw new HttpError(400, 'cursor belongs to a query with other filters; repeat the same since and usecase, or drop them');
      }
      since = position.since;
      usecase = position.usecase;
    } else {
      since = parseSince(params.get('since'), now);
    }

    const items: Feedback[] = [];
    const firstDay = Math.floor((position?.eventTime ?? since) / DAY_MS) * DAY_MS;
    for (let day = firstDay; day <= now + DAY_MS && items.length < limit; day += DAY_MS) {
      const where = ['customer_id = ?', 'day = ?'];
      const values: unknown[] = [customer, utcDay(day)];
      if (position && day === firstDay) {
        where.push('(event_time, feedback_id) > (?, ?)');
        values.push(new Date(position.eventTime), position.feedbackId);
      } else {
        where.push('event_time >= ?');
        values.push(new Date(since));
      }
      if (usecase) {
        where.push('usecase = ?');
        values.push(usecase);
      }
      values.push(limit - items.length);
      const query = `SELECT ${columns} FROM ${keyspace}.feedback_by_customer WHERE ${where.join(' AND ')} LIMIT ?${usecase ? ' ALLOW FILTERING' : ''}`;
      const result = await cassandra.execute(query, values, { prepare: true });
      items.push(...result.rows.map(toFeedbackJson));
    }
    const last = items.at(-1);
    const next = items.length === limit && last ? (await cursors()).encode({ customer, since, usecase, eventTime: last.event_time, feedbackId: last.feedback_id }) : null;
    return { items, next_cursor: next };
  }

  function stream(customer: string, params: URLSearchParams, request: IncomingMessage, response: ServerResponse): void {
    const usecase = params.get('usecase') || null;
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    response.write(': connected\n\n');
    const unlisten = live.listen(customer, (row) => {
      if (usecase && row.usecase !== usecase) return;
      response.write(`id: ${row.feedback_id}\nevent: feedback\ndata: ${JSON.stringify(row)}\n\n`);
    });
    const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
    metrics.set('diamond_feedback_api_streams', 'open server-sent event streams', (metrics.get('diamond_feedback_api_streams') || 0) + 1);
    request.once('close', () => {
      clearInterval(keepAlive);
      unlisten();
      metrics.set('diamond_feedback_api_streams', 'open server-sent event streams', metrics.get('diamond_feedback_api_streams') - 1);
    });
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET') throw new HttpError(405, 'only GET is supported');
    switch (url.pathname) {
      case '/healthz': {
        // Healthy means the API can answer: Cassandra must respond.
        const cassandraOk = await cassandra.execute('SELECT release_version FROM system.local', [], { readTimeout: 2000 }).then(() => true, () => false);
        return sendJson(response, cassandraOk ? 200 : 503, { status: cassandraOk ? 'ok' : 'degraded', cassandra: cassandraOk ? 'ok' : 'unreachable' });
      }
      case '/metrics':
        response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        return void response.end(metrics.render());
      case '/v1/feedback':
        return sendJson(response, 200, await listFeedback(await authenticate(request), url.searchParams));
      case '/v1/feedback/stream':
        return stream(await authenticate(request), url.searchParams, request, response);
      default:
        throw new HttpError(404, `no route ${url.pathname}`);
    }
  }

  return createServer((request, response) => {
    const started = performance.now();
    handle(request, response)
      .catch((error: unknown) => {
        if (error instanceof HttpError) {
          if (error.status === 401) response.setHeader('www-authenticate', 'Bearer');
          return sendJson(response, error.status, { error: error.message });
        }
        log.error({ error: error instanceof Error ? error.message : String(error), path: request.url }, 'request failed');
        if (!response.headersSent) sendJson(response, 503, { error: 'feedback store unavailable, retry later' });
        else response.end();
      })
      .finally(() => {
        metrics.inc('diamond_feedback_api_requests_total', 'HTTP requests by status', 1, { status: String(response.statusCode) });
        metrics.inc('diamond_feedback_api_request_seconds_sum', 'time spent answering requests', (performance.now() - started) / 1000);
      });
  });
}
