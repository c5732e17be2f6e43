/**
 * The HTTP ingest API (node:http):
 *
 *   POST /v1/records   Authorization: Bearer <source key>; body: JSON array, one object, or NDJSON
 *        202 { accepted, rejected, errors: [{ index, reasons: [{ field, problem }] }] }
 *            — only after Kafka acknowledged every good record and every rejected envelope
 *        400 empty body · 401 no or wrong key · 413 body larger than the limit
 *        503 + Retry-After when Kafka did not acknowledge or too much is waiting for it
 *   GET  /healthz      200 when the producer is connected, 503 otherwise
 *   GET  /metrics      Prometheus text format
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackpressureError, DiamondError, KafkaWriteError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { IngestMetrics } from './metrics.ts';
import type { RecordPipeline } from './pipeline.ts';
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

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export class IngestServer {
  readonly metrics = new IngestMetrics();
  readonly #options: IngestServerOptions;
  readonly #server: Server;

  constructor(options: IngestServerOptions) {
    this.#options = options;
    this.#server = createServer((request, response) => {
      void this.#handle(request, response);
    });
    this.#server.keepAliveTimeout = 65_000;
  }

  /** Listens (port 0 = a free port) and resolves with the base URL. */
  async listen(port: number, host: string): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    const address = this.#server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${shownHost}:${address.port}`;
  }

  async close(): Promise<void> {
    this.#server.closeIdleConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(request.url ?? '/', 'http://localhost');
    let status = 500;
    try {
      if (url.pathname === '/v1/records') {
        if (request.method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' });
        status = await this.#ingest(request, response);
      } else if (url.pathname === '/healthz' && request.method === 'GET') {
        const ready = this.#options.kafkaReady();
        status = send(response, ready ? 200 : 503, { status: ready ? 'ok' : 'kafka unavailable', in_flight: this.#options.pipeline.inFlight });
      } else if (url.pathname === '/metrics' && request.method === 'GET') {
        status = 200;
        response.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end(this.metrics.render({ inFlight: this.#options.pipeline.inFlight }));
      } else {
        throw new HttpError(404, `no route ${request.method ?? ''} ${url.pathname}; POST /v1/records, GET /healthz, GET /metrics`);
      }
    } catch (error) {
      status = this.#answerError(request, response, error);
    } finally {
      this.metrics.countRequest(status, (performance.now() - started) / 1000);
    }
  }

  async #ingest(request: IncomingMessage, response: ServerResponse): Promise<number> {
    const header = request.headers.authorization ?? '';
    const apiKey = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const source = apiKey ? await this.#options.sources.authenticate(apiKey) : null;
    if (!source) throw new HttpError(401, apiKey ? 'this API key is not valid' : 'send the source API key as Authorization: Bearer <key>', { 'WWW-Authenticate': 'Bearer' });
    const body = await readBody(request, this.#options.maxBodyBytes);
    if (isBlank(body)) throw new HttpError(400, 'the body is empty; send a JSON array of records or NDJSON (one record per line)');
    const items = splitBody(body);
    const result = await this.#options.pipeline.process(source, items, 'http', (index) => ({ index }));
    this.metrics.countRecords(source.name, result.accepted, result.rejected.length);
    return send(response, 202, { accepted: result.accepted, rejected: result.rejected.length, errors: result.rejected });
  }

  #answerError(request: IncomingMessage, response: ServerResponse, error: unknown): number {
    if (error instanceof HttpError) {
      if (error.status === 413) response.setHeader('Connection', 'close'); // the rest of the body is not read
      return send(response, error.status, { error: error.message }, error.headers);
    }
    if (error instanceof KafkaWriteError || error instanceof BackpressureError) {
      this.#options.logger.warn({ err: error, code: error.code }, 'answering 503: nothing of this request was acknowledged');
      return send(response, 503, { error: error.message, code: error.code, retriable: true }, { 'Retry-After': error instanceof BackpressureError ? '1' : '5' });
    }
    this.#options.logger.error({ err: error, method: request.method, url: request.url }, 'ingest request failed');
    const message = error instanceof DiamondError ? error.message : 'internal error';
    return send(response, 500, { error: message });
  }
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): number {
  if (response.headersSent) {
    response.end();
    return status;
  }
  response.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
  return status;
}

/**
 * The whole body, or a 413 as soon as it is known to be too large. The rest of a too large
 * body is drained, not read into memory (destroying the socket would lose the 413 answer).
 */
async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? Number.NaN);
  const tooLarge = (size: string): HttpError => new HttpError(413, `the body has ${size} bytes; at most ${maxBytes} are accepted (DIAMOND_INGEST_MAX_BODY_BYTES)`);
  if (declared > maxBytes) {
    request.resume();
    throw tooLarge(String(declared));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      request.off('data', onData);
      request.resume();
      reject(tooLarge(`more than ${maxBytes}`));
    };
    request.on('data', onData);
    request.once('end', () => resolve(Buffer.concat(chunks, size)));
    request.once('error', reject);
  });
}
