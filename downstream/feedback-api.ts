/**
 * The customer feedback API (fastify, through the shared kit).
 *
 *   GET /v1/feedback?since=&usecase=&limit=&cursor=   customer key   that customer's feedback, oldest first
 *   GET /v1/feedback/stream?usecase=                  customer key   new feedback as server-sent events
 *   GET /v1/summary?since=                            customer key   that customer's summary, computed on demand (customer-summary.ts)
 *   GET /v1/ab/<usecase>?days=&variants=A,B           operator token (viewer or above)   the A/B comparison
 *   GET /metrics                                      operator token (viewer or above)   Prometheus text format
 *   GET /livez, GET /readyz (/healthz), GET /openapi.json   no credential
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
import { registerHealthRoutes } from '../shared/http/health-routes.ts';
import { createHttpServer, isPublicRoute, type HttpServer } from '../shared/http/server.ts';
import { StreamQuota } from '../shared/http/stream-quota.ts';
import type { Logger } from '../shared/logger.ts';
import { observeRequests } from '../shared/metrics/request-metrics.ts';
import { roleAllows, type TokenGrant, type TokenStore } from '../shared/operator-tokens.ts';
import type { Feedback } from '../shared/schemas.ts';
import { compareUsecase } from './ab-comparison.ts';
import type { CustomerSummaries } from './customer-summary.ts';
import type { DownstreamMetrics } from './downstream-metrics.ts';
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
  readonly metrics: DownstreamMetrics;
  readonly logger: Logger;
  /** Live streams one customer may hold open at once (config.http.streamsPerClient). */
  readonly streamsPerCustomer: number;
  /** Runs GET /v1/summary's function on the control API. */
  readonly summaries: CustomerSummaries;
}

const DAY_MS = 24 * 3600 * 1000;
const MAX_LIMIT = 1000;

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

/** The only query parameter of /v1/summary: the customer is the API key's, never a parameter. */
const SUMMARY_PARAMS = new Set(['since']);

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
    metrics.apiStreams.inc();
    response.once('close', () => {
      release();
      clearInterval(keepAlive);
      unlisten();
      metrics.apiStreams.dec();
    });
  }

  const app = await createHttpServer({
    title: 'Diamond feedback API',
    description: "Each customer's feedback (pages and a live stream) and summary, and the operators' A/B comparison.",
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
  observeRequests(app, metrics.registry, 'diamond_feedback_api', 'Time to answer feedback API requests, by route and status.');

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

  app.get<{ Querystring: { since?: string } }>('/v1/summary', {
    schema: {
      summary: "The caller's summary since a time (record count, spend by currency, feedback by kind), computed on demand from history",
      description: 'Runs customer_insights.customer_summary for the customer of the API key (docs/RUNS.md). 502: the run failed (its error code and message); 504: it did not finish within DIAMOND_SUMMARY_WAIT and was stopped, retry; 503: summaries are not configured or the orchestrator is down.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { since: { type: 'string', minLength: 1, maxLength: 64, description: 'ISO-8601 time with a zone, a date (2026-11-01 = midnight UTC), or a duration back (7d, 12h, 30m, 1w); default 30d' } },
      },
      response: {
        200: {
          type: 'object', required: ['summary', 'run'],
          properties: {
            summary: { description: 'the function\'s result: { customer_id, since, records, spend_by_currency, feedback_by_kind }' },
            run: { type: 'object', required: ['id', 'state'], properties: { id: { type: 'string' }, state: { type: 'string', enum: ['finished'] }, timings: { type: ['object', 'null'], additionalProperties: { type: 'number' } } } },
          },
        },
        ...ERRORS, 502: ERROR_BODY_SCHEMA, 504: ERROR_BODY_SCHEMA,
      },
    },
    // Before the schema, so the refusal names the parameter; customer_id above all: it comes from the key.
    preValidation: async (request) => {
      for (const name of Object.keys(request.query)) {
        if (name === 'customer_id') throw new ApiError('DIAMOND_BAD_REQUEST', 'customer_id is not a parameter: the summary is always the API key\'s own customer', 'drop customer_id; each customer reads its own summary with its own key');
        if (!SUMMARY_PARAMS.has(name)) throw new ApiError('DIAMOND_BAD_REQUEST', `${name} is not a parameter of /v1/summary`, 'the only parameter is since (e.g. since=7d)');
      }
    },
  }, async (request, reply) => {
    const answer = await options.summaries.summarize(customerOf(request), request.query.since);
    return reply.header('cache-control', 'no-store').send(answer);
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

  registerHealthRoutes(app, {
    dependencies: 'Cassandra',
    // Ready means the API can answer: Cassandra must respond.
    check: async () => {
      const cassandraOk = await cassandra.execute('SELECT release_version FROM system.local', [], { readTimeout: 2000 }).then(() => true, () => false);
      return { ready: cassandraOk, body: { cassandra: cassandraOk ? 'ok' : 'unreachable' } };
    },
  });

  // The writers' series too; customers' keys are refused (403), an operator's viewer token reads them.
  app.get('/metrics', { schema: { summary: 'Prometheus metrics of the API and the writers (an operator token with the viewer role)', response: { 200: textAnswer('text/plain', 'the Prometheus text format'), ...ERRORS } } }, async (request, reply) => {
    requireViewer(request);
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return app;
}
