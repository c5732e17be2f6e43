/**
 * The HTTP ingest API (fastify, through the shared kit):
 *
 *   POST /v1/records   Authorization: Bearer <source key>; body: JSON array, one object, or NDJSON
 *        202 { accepted, rejected, errors: [{ index, reasons: [{ field, problem }] }] }
 *            — only after Kafka acknowledged every good record and every rejected envelope
 *        400 empty body · 401 no or wrong key · 413 body larger than the limit
 *        503 + Retry-After when Kafka did not acknowledge or too much is waiting for it
 *   GET  /livez        200 while the process runs
 *   GET  /readyz       200 when the producer is connected, 503 otherwise (/healthz: its alias)
 *   GET  /metrics      Prometheus text format; an operator token (viewer), never a source key
 *   GET  /openapi.json the OpenAPI 3.1 document
 *
 * The hot path stays lean: the body is read as one raw Buffer (no JSON parser, no schema
 * validation per record: `splitBody` and the pipeline do that once), and requests are
 * logged at debug only.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../shared/errors.ts';
import { bearerToken } from '../shared/http/bearer.ts';
import { ERROR_BODY_SCHEMA } from '../shared/http/error-body.ts';
import { registerHealthRoutes } from '../shared/http/health-routes.ts';
import { textAnswer } from '../shared/http/openapi-responses.ts';
import { requireOperator } from '../shared/http/operator-guard.ts';
import { createHttpServer, listen, type HttpServer } from '../shared/http/server.ts';
import type { Logger } from '../shared/logger.ts';
import { createMetricsRegistry, type MetricsRegistry } from '../shared/metrics/registry.ts';
import { observeRequests } from '../shared/metrics/request-metrics.ts';
import type { TokenStore } from '../shared/operator-tokens.ts';
import { IngestMetrics } from './ingest-metrics.ts';
import type { RecordPipeline, SourceRef } from './pipeline.ts';
import type { SourceStore } from './sources.ts';
import { isBlank, splitBody } from './split.ts';

export interface IngestServerOptions {
  readonly pipeline: RecordPipeline;
  readonly sources: SourceStore;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  /** Whether Kafka is reachable right now (for /readyz). */
  readonly kafkaReady: () => boolean;
  /** Operators' tokens: /metrics is theirs, not the sources'. */
  readonly operators: TokenStore;
  /** Default: a registry of its own, with the default process metrics. */
  readonly registry?: MetricsRegistry;
}

const ACCEPTED_SCHEMA = {
  type: 'object',
  required: ['accepted', 'rejected', 'errors'],
  properties: {
    accepted: { type: 'integer', description: 'records written to records.normalized' },
    rejected: { type: 'integer', description: 'records written to records.rejected, with their reasons' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          index: { type: 'integer' },
          reasons: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, problem: { type: 'string' } } } },
        },
      },
    },
  },
} as const;

export class IngestServer {
  readonly registry: MetricsRegistry;
  readonly metrics: IngestMetrics;
  readonly #options: IngestServerOptions;
  #app: HttpServer | null = null;

  constructor(options: IngestServerOptions) {
    this.#options = options;
    this.registry = options.registry ?? createMetricsRegistry();
    this.metrics = new IngestMetrics(this.registry, () => options.pipeline.inFlight);
  }

  /** Listens (port 0 = a free port) and resolves with the base URL. */
  async listen(port: number, host: string): Promise<string> {
    const app = await this.#build();
    this.#app = app;
    return listen(app, { port, host, api: 'ingest API', change: { flag: '--port', env: 'DIAMOND_INGEST_PORT' } });
  }

  async close(): Promise<void> {
    await this.#app?.close();
  }

  async #build(): Promise<HttpServer> {
    const { pipeline, sources, maxBodyBytes, logger, kafkaReady, operators } = this.#options;
    const app = await createHttpServer({
      title: 'Diamond ingest API',
      description: 'Customer records in; 202 only after Kafka acknowledged them (acks=all).',
      logger,
      bodyLimit: maxBodyBytes,
      bodyLimitHint: 'send fewer records per request, or raise DIAMOND_INGEST_MAX_BODY_BYTES',
      bearerDescription: 'the source API key (`npx diamond source add <name>` prints it)',
    });
    // Every body is one raw Buffer: splitBody tells JSON from NDJSON once, cheaper than a parser per content type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    observeRequests(app, this.registry, 'diamond_ingest', 'Time to answer ingest API requests, by route and status.');

    const authenticated = new WeakMap<FastifyRequest, SourceRef>();
    app.post('/v1/records', {
      bodyLimit: maxBodyBytes,
      schema: {
        summary: 'Send records',
        description: 'A JSON array of records, one JSON object, or NDJSON (one record per line). Bad records are rejected with their reasons, never dropped.',
        consumes: ['application/json', 'application/x-ndjson'],
        response: { 202: ACCEPTED_SCHEMA, '4xx': ERROR_BODY_SCHEMA, 503: ERROR_BODY_SCHEMA },
      },
      // The key is checked before the body is read.
      onRequest: async (request) => {
        const apiKey = bearerToken(request.headers.authorization);
        const source = apiKey ? await sources.authenticate(apiKey) : null;
        if (!source) {
          throw new ApiError('DIAMOND_UNAUTHORIZED', apiKey ? 'this API key is not valid' : 'send the source API key as Authorization: Bearer <key>', 'create a source and its key with `npx diamond source add <name>`', { 'WWW-Authenticate': 'Bearer' });
        }
        authenticated.set(request, source);
      },
    }, async (request, reply) => {
      const source = authenticated.get(request)!;
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      if (isBlank(body)) throw new ApiError('DIAMOND_BODY_EMPTY', 'the body is empty; send a JSON array of records or NDJSON (one record per line)');
      const result = await pipeline.process(source, splitBody(body), 'http', (index) => ({ index }));
      this.metrics.countRecords(source.name, result.accepted, result.rejected.length);
      return reply.code(202).send({ accepted: result.accepted, rejected: result.rejected.length, errors: result.rejected });
    });

    registerHealthRoutes(app, {
      dependencies: 'Kafka',
      check: async () => {
        const ready = kafkaReady();
        return { ready, body: { kafka: ready ? 'ok' : 'unreachable', in_flight: pipeline.inFlight } };
      },
    });

    app.get('/metrics', {
      onRequest: requireOperator(operators, 'viewer'),
      schema: { summary: 'Prometheus metrics (an operator token with the viewer role)', response: { 200: textAnswer('text/plain', 'the Prometheus text format'), '4xx': ERROR_BODY_SCHEMA } },
    }, async (_request, reply) => reply.type(this.registry.contentType).send(await this.registry.metrics()));
    return app;
  }
}
