/**
 * The HTTP ingest API (fastify, through the shared kit):
 *
 *   POST /v1/records   Authorization: Bearer <source key>; body: JSON array, one object, or NDJSON
 *        202 { accepted, rejected, errors: [{ index, reasons: [{ field, problem }] }] }
 *            — only after Kafka acknowledged every good record and every rejected envelope
 *        400 empty body · 401 no or wrong key · 413 body larger than the limit
 *        503 + Retry-After when Kafka did not acknowledge or too much is waiting for it
 *   GET  /healthz      200 when the producer is connected, 503 otherwise
 *   GET  /metrics      Prometheus text format
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
import { Metrics, PROMETHEUS_CONTENT_TYPE } from '../shared/http/prometheus.ts';
import { createHttpServer, listen, type HttpServer, type RouteSettings } from '../shared/http/server.ts';
import type { Logger } from '../shared/logger.ts';
import type { RecordPipeline, SourceRef } from './pipeline.ts';
import type { SourceStore } from './sources.ts';
import { isBlank, splitBody } from './split.ts';

export interface IngestServerOptions {
  readonly pipeline: RecordPipeline;
  readonly sources: SourceStore;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  /** Whether Kafka is reachable right now (for /healthz). */
  readonly kafkaReady: () => boolean;
}

const REQUESTS = 'diamond_ingest_requests_total';
const REQUEST_SECONDS = 'diamond_ingest_request_seconds_total';
const RECORDS = 'diamond_ingest_records_total';

const PUBLIC: RouteSettings = { public: true };

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

const HEALTH_SCHEMA = { type: 'object', properties: { status: { type: 'string' }, in_flight: { type: 'integer' } } } as const;

/** Ingest-side series of the shared Prometheus renderer. */
export class IngestMetrics {
  readonly #metrics = new Metrics();

  countRequest(status: number, seconds: number): void {
    this.#metrics.inc(REQUESTS, 'HTTP ingest requests by status.', 1, { status: String(status) });
    this.#metrics.inc(REQUEST_SECONDS, 'Time spent answering ingest requests.', seconds);
  }

  countRecords(source: string, accepted: number, rejected: number): void {
    this.#metrics.inc(RECORDS, 'Records by source and outcome (accepted or rejected).', accepted, { source, outcome: 'accepted' });
    this.#metrics.inc(RECORDS, 'Records by source and outcome (accepted or rejected).', rejected, { source, outcome: 'rejected' });
  }

  render(gauges: { inFlight: number }): string {
    this.#metrics.set('diamond_ingest_in_flight_messages', 'Messages waiting for Kafka to acknowledge them.', gauges.inFlight);
    this.#metrics.set('process_resident_memory_bytes', 'Resident memory size in bytes.', process.memoryUsage.rss());
    return this.#metrics.render();
  }
}

export class IngestServer {
  readonly metrics = new IngestMetrics();
  readonly #options: IngestServerOptions;
  #app: HttpServer | null = null;

  constructor(options: IngestServerOptions) {
    this.#options = options;
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
    const { pipeline, sources, maxBodyBytes, logger, kafkaReady } = this.#options;
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
    app.addHook('onResponse', (_request, reply, done) => {
      this.metrics.countRequest(reply.statusCode, reply.elapsedTime / 1000);
      done();
    });

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

    app.get('/healthz', { config: PUBLIC, schema: { summary: 'Whether Kafka is reachable', security: [], response: { 200: HEALTH_SCHEMA, 503: HEALTH_SCHEMA } } }, async (_request, reply) => {
      const ready = kafkaReady();
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'kafka unavailable', in_flight: pipeline.inFlight });
    });

    app.get('/metrics', { config: PUBLIC, schema: { summary: 'Prometheus metrics', security: [], produces: [PROMETHEUS_CONTENT_TYPE] } }, async (_request, reply) =>
      reply.type(PROMETHEUS_CONTENT_TYPE).send(this.metrics.render({ inFlight: pipeline.inFlight })));
    return app;
  }
}
