/**
 * The customer feedback API (fastify, through the shared kit).
 *
 *   GET /v1/feedback?since=&usecase=&limit=&cursor=   customer key   that customer's feedback, oldest first
 *   GET /v1/feedback/stream?usecase=                  customer key   new feedback as server-sent events
 *   GET /v1/ab/<usecase>?days=&variants=A,B           operator token (viewer or above)   the A/B comparison
 *   GET /healthz, GET /metrics, GET /openapi.json     no credential
 *
 * The credential is checked before routing: any other path without a valid one is 401, with
 * one 404. The customer is taken from the key, never from the request, and every query is
 * restricted to that customer's partitions: ids, filters or cursors cannot reach another
 * customer's rows. Operators' tokens are the control API's (shared/operator-tokens.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { CassandraClient } from '../shared/cassandra.ts';
import { ApiError, DiamondError, ServiceUnavailableError } from '../shared/errors.ts';
import { bearerToken } from '../shared/http/bearer.ts';
import { ERROR_BODY_SCHEMA } from '../shared/http/error-body.ts';
import { jsonAnswer, textAnswer } from '../shared/http/openapi-responses.ts';
import { PROMETHEUS_CONTENT_TYPE, type Metrics } from '../shared/http/prometheus.ts';
import { createHttpServer, isPublicRoute, type HttpServer, type RouteSettings } from '../shared/http/server.ts';
import { StreamQuota } from '../shared/http/stream-quota.ts';
import type { Logger } from '../shared/logger.ts';
import { roleAllows, type TokenGrant, type TokenStore } from '../shared/operator-tokens.ts';
import type { Feedback } from '../shared/schemas.ts';
import { compareUsecase } from './ab-comparison.ts';
import { utcDay } from './cassandra-rows.ts';
import type { CustomerKeys } from './customer-keys.ts';
import { CursorCodec, type CursorPosition } from './feedback-cursor.ts';
import type { LiveFeed } from './live-feed.ts';
import { RETENTION_SECONDS } from './migrations.ts';
import type { RolloutStore } from './rollout-store.ts';

export interface FeedbackApiOptions {
  readonly cassandra: CassandraClient;
  /** Named in the 503 when Cassandra fails. */
  readonly cassandraAddress: string;
  readonly keyspace: string;
  readonly customers: CustomerKeys;
  /** Operators' bearer tokens, for the A/B report. */
  readonly operators: TokenStore;
  readonly rollouts: RolloutStore;
  /** Holds the cursor signing secret. */
  readonly redis: Redis;
  readonly live: LiveFeed;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Live streams one customer may hold open at once (config.http.streamsPerClient). */
  readonly streamsPerCustomer: number;
}

const DAY_MS = 24 * 3600 * 1000;
const MAX_LIMIT = 1000;
const PUBLIC: RouteSettings = { public: true };

type Caller = { readonly kind: 'customer'; readonly customer: string } | { readonly kind: 'operator'; readonly grant: TokenGrant };

interface FeedbackQuery {
  readonly since?: string;
  readonly usecase?: string;
  readonly limit?: number;
  readonly cursor?: string;
}

interface AbQuery {
  readonly days?: number;
  readonly variants?: string;
}

const FEEDBACK_SCHEMA = {
  type: 'object',
  properties: {
    feedback_id: { type: 'string' }, customer_id: { type: 'string' }, usecase: { type: 'string' }, variant: { type: 'string' }, version: { type: 'string' },
    kind: { type: 'string' }, severity: { type: 'string' }, score: { type: ['number', 'null'] }, message: { type: 'string' },
    details: { type: 'object', additionalProperties: { type: 'string' } }, record_ids: { type: 'array', items: { type: 'string' } },
    event_time: { type: 'integer', description: 'epoch milliseconds' }, produced_at: { type: 'integer', description: 'epoch milliseconds' },
  },
} as const;

const ERRORS = { '4xx': ERROR_BODY_SCHEMA, 503: ERROR_BODY_SCHEMA } as const;

function parseSince(text: string | undefined, now: number): number {
  const oldest = now - RETENTION_SECONDS * 1000;
  if (text === undefined || text === '') return oldest;
  const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(value)) throw new ApiError('DIAMOND_BAD_REQUEST', 'since must be an ISO-8601 time or epoch milliseconds', 'e.g. since=2026-11-01T00:00:00Z');
  return Math.max(value, oldest);
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

export async function createFeedbackApi(options: FeedbackApiOptions): Promise<HttpServer> {
  const { cassandra, keyspace, customers, operators, rollouts, live, metrics, logger } = options;
  let codec: Promise<CursorCodec> | undefined;
  const cursors = (): Promise<CursorCodec> => (codec ??= CursorCodec.fromRedis(options.redis).catch((error: unknown) => { codec = undefined; throw error; }));
  const columns = 'feedback_id, customer_id, usecase, variant, version, kind, severity, score, message, details, record_ids, event_time, produced_at';
  const callers = new WeakMap<FastifyRequest, Caller>();
  const streamQuota = new StreamQuota(options.streamsPerCustomer, 'close another live stream of this customer, or retry after Retry-After');

  /** A failing Cassandra is an outage (503), never a bug (500). */
  async function fromStore<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof DiamondError) throw error;
      throw new ServiceUnavailableError('Cassandra', options.cassandraAddress, { hint: 'the feedback store is unavailable; retry later', cause: error });
    }
  }

  async function identify(token: string): Promise<Caller | null> {
    const customer = await customers.authenticate(token);
    if (customer) return { kind: 'customer', customer };
    const grant = await operators.verify(token);
    return grant ? { kind: 'operator', grant } : null;
  }

  function customerOf(request: FastifyRequest): string {
    const caller = callers.get(request);
    if (caller?.kind !== 'customer') throw new ApiError('DIAMOND_FORBIDDEN', 'this call needs a customer API key', 'create one with `npx diamond customer add <id>`');
    return caller.customer;
  }

  function requireViewer(request: FastifyRequest): void {
    const caller = callers.get(request);
    if (caller?.kind !== 'operator' || !roleAllows(caller.grant.role, 'viewer')) {
      throw new ApiError('DIAMOND_FORBIDDEN', 'this call needs an operator token with the viewer role', 'create one with `npx diamond token add --role viewer`');
    }
  }

  async function listFeedback(customer: string, query: FeedbackQuery): Promise<{ items: Feedback[]; next_cursor: string | null }> {
    const limit = query.limit ?? 100;
    const now = Date.now();
    let position: CursorPosition | null = null;
    let since: number;
    let usecase = query.usecase || null;
    if (query.cursor) {
      position = (await cursors()).decode(query.cursor);
      // A cursor only continues the query it came from, for the customer it was issued to.
      if (!position || position.customer !== customer) throw new ApiError('DIAMOND_BAD_REQUEST', 'cursor is not valid for this API key', 'start again without cursor');
      if ((query.usecase !== undefined && usecase !== position.usecase) || (query.since !== undefined && parseSince(query.since, now) !== position.since)) {
        throw new ApiError('DIAMOND_BAD_REQUEST', 'cursor belongs to a query with other filters', 'repeat the same since and usecase, or drop them');
      }
      since = position.since;
      usecase = position.usecase;
    } else {
      since = parseSince(query.since, now);
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
      const statement = `SELECT ${columns} FROM ${keyspace}.feedback_by_customer WHERE ${where.join(' AND ')} LIMIT ?${usecase ? ' ALLOW FILTERING' : ''}`;
      const result = await fromStore(() => cassandra.execute(statement, values, { prepare: true }));
      items.push(...result.rows.map(toFeedbackJson));
    }
    const last = items.at(-1);
    const next = items.length === limit && last ? (await cursors()).encode({ customer, since, usecase, eventTime: last.event_time, feedbackId: last.feedback_id }) : null;
    return { items, next_cursor: next };
  }

  function stream(customer: string, usecase: string | null, reply: FastifyReply): void {
    const release = streamQuota.acquire(customer); // throws 429 before anything is written
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // Once the client left, nothing more is written (a late row or keep-alive would throw).
    const write = (text: string): void => {
      if (!response.writableEnded && !response.destroyed) response.write(text);
    };
    write(': connected\n\n');
    const unlisten = live.listen(customer, (row) => {
      if (usecase && row.usecase !== usecase) return;
      write(`id: ${row.feedback_id}\nevent: feedback\ndata: ${JSON.stringify(row)}\n\n`);
    });
    const keepAlive = setInterval(() => write(': keep-alive\n\n'), 15_000);
    metrics.set('diamond_feedback_api_streams', 'open server-sent event streams', metrics.get('diamond_feedback_api_streams') + 1);
    response.once('close', () => {
      release();
      clearInterval(keepAlive);
      unlisten();
      metrics.set('diamond_feedback_api_streams', 'open server-sent event streams', metrics.get('diamond_feedback_api_streams') - 1);
    });
  }

  const app = await createHttpServer({
    title: 'Diamond feedback API',
    description: "Each customer's feedback (pages and a live stream), and the operators' A/B comparison.",
    logger: logger.child({ component: 'feedback-api' }),
    bodyLimit: 16 * 1024,
    bodyLimitHint: 'the feedback API reads no bodies; send GET requests',
    bearerDescription: 'a customer API key (`npx diamond customer add <id>`), or for /v1/ab an operator token (`npx diamond token add --role viewer`)',
  });

  app.addHook('onRequest', async (request) => {
    if (isPublicRoute(request)) return;
    const token = bearerToken(request.headers.authorization);
    const caller = token ? await identify(token) : null;
    if (!caller) {
      throw new ApiError('DIAMOND_UNAUTHORIZED', 'a valid API key is required: Authorization: Bearer <key>', 'create one with `npx diamond customer add <id>`', { 'WWW-Authenticate': 'Bearer' });
    }
    callers.set(request, caller);
  });
  app.addHook('onResponse', (_request, reply, done) => {
    metrics.inc('diamond_feedback_api_requests_total', 'HTTP requests by status', 1, { status: String(reply.statusCode) });
    metrics.inc('diamond_feedback_api_request_seconds_sum', 'time spent answering requests', reply.elapsedTime / 1000);
    done();
  });

  app.get<{ Querystring: FeedbackQuery }>('/v1/feedback', {
    schema: {
      summary: "The caller's feedback, oldest first, in pages",
      querystring: {
        type: 'object',
        properties: {
          since: { type: 'string', description: 'ISO-8601 time or epoch milliseconds; default: 60 days ago' },
          usecase: { type: 'string' },
          limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, description: `items per page (default 100)` },
          cursor: { type: 'string', description: 'next_cursor of the previous page' },
        },
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: FEEDBACK_SCHEMA }, next_cursor: { type: ['string', 'null'] } } }, ...ERRORS },
    },
  }, async (request, reply) => {
    const page = await listFeedback(customerOf(request), request.query);
    return reply.header('cache-control', 'no-store').send(page);
  });

  app.get<{ Querystring: { usecase?: string } }>('/v1/feedback/stream', {
    schema: {
      summary: "The caller's new feedback as server-sent events (event: feedback)", querystring: { type: 'object', properties: { usecase: { type: 'string' } } },
      response: { 200: textAnswer('text/event-stream', 'server-sent events: event feedback, data one feedback row as JSON'), ...ERRORS },
    },
  }, async (request, reply) => {
    stream(customerOf(request), request.query.usecase || null, reply);
  });

  app.get<{ Params: { usecase: string }; Querystring: AbQuery }>('/v1/ab/:usecase', {
    schema: {
      summary: "A/B comparison of a use case's variants: rows, customers, agreement, latency (operators)",
      params: { type: 'object', required: ['usecase'], properties: { usecase: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,62}$' } } },
      querystring: {
        type: 'object',
        properties: {
          days: { type: 'integer', minimum: 0, maximum: 60, description: 'days back from today, UTC (default 1)' },
          variants: { type: 'string', pattern: '^[A-Z](,[A-Z])*$', description: 'comma-separated; default: those in the rollout weights, else A,B' },
        },
      },
      response: { 200: jsonAnswer('the comparison', ['usecase', 'days', 'variants']), ...ERRORS },
    },
  }, async (request, reply) => {
    requireViewer(request);
    const variants = request.query.variants?.split(',');
    const report = await fromStore(() => compareUsecase(cassandra, keyspace, rollouts, { usecase: request.params.usecase, days: request.query.days ?? 1, variants }));
    return reply.header('cache-control', 'no-store').send(report);
  });

  app.get('/healthz', { config: PUBLIC, schema: { summary: 'Whether Cassandra answers', security: [] } }, async (_request, reply) => {
    // Healthy means the API can answer: Cassandra must respond.
    const cassandraOk = await cassandra.execute('SELECT release_version FROM system.local', [], { readTimeout: 2000 }).then(() => true, () => false);
    return reply.code(cassandraOk ? 200 : 503).send({ status: cassandraOk ? 'ok' : 'degraded', cassandra: cassandraOk ? 'ok' : 'unreachable' });
  });

  app.get('/metrics', { config: PUBLIC, schema: { summary: 'Prometheus metrics of the API and the writers', security: [], produces: [PROMETHEUS_CONTENT_TYPE] } }, async (_request, reply) =>
    reply.type(PROMETHEUS_CONTENT_TYPE).send(metrics.render()));
  return app;
}
