/**
 * A fastify instance with the house defaults, for each of Diamond's HTTP APIs (ingest,
 * feedback, control):
 * - errors answer the one body `{ error, code, hint }` (error-body.ts, the catalog's status);
 * - an unknown path is 404, a known path with another method 405 with `Allow`;
 * - a body over the limit is 413 (fastify stops reading it; the connection is closed);
 * - one debug line per request through the service's pino logger, with the path only (no
 *   query string, no headers: tokens never reach the log);
 * - `GET /openapi.json`: the OpenAPI 3.1 document generated from the routes' schemas;
 * - `listen()` turns a busy port into a PortInUseError naming the flag and the variable.
 *
 *   const app = await createHttpServer({ title: 'Diamond ingest API', … });
 *   app.get('/livez', { schema, config: { public: true } }, handler);
 *   const url = await listen(app, { port, host, api: 'ingest API', change: { flag: '--port', env: 'DIAMOND_INGEST_PORT' } });
 */
import swagger from '@fastify/swagger';
import { fastify, LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, PortInUseError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { errorAnswer, type ErrorContext } from './error-body.ts';
import { matchRoute, type RoutePattern } from './route-match.ts';

/** A fastify instance whose logger is the service's pino logger. */
export type HttpServer = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

export interface HttpServerOptions {
  /** OpenAPI title, e.g. 'Diamond ingest API'. */
  readonly title: string;
  readonly description: string;
  readonly logger: Logger;
  /** Largest body any route reads (routes may lower it). */
  readonly bodyLimit: number;
  /** The hint of a 413: how to send less or raise the limit. */
  readonly bodyLimitHint: string;
  /** Security scheme of the document: the APIs take bearer credentials. */
  readonly bearerDescription: string;
}

/** Route-level settings read by the kit's hooks (`config` of a route). */
export interface RouteSettings {
  /** No credential needed (health checks, the OpenAPI document). */
  readonly public?: boolean;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** Path without the query string (which may hold a token). */
const pathOf = (url: string): string => {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
};

export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = fastify({
    loggerInstance: options.logger,
    // Requests are logged once, at debug, by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    keepAliveTimeout: 65_000,
    routerOptions: { ignoreTrailingSlash: true },
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } },
    // `usecase must match pattern …`: the field first, as the hand-written parsers said it.
    schemaErrorFormatter: (errors, dataVar) => {
      const first = errors[0];
      const field = (first?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
      const property = first?.keyword === 'required' ? (first.params as { missingProperty?: unknown }).missingProperty : undefined;
      const missing = typeof property === 'string' ? property : '';
      const name = missing || field || dataVar;
      return new ApiError('DIAMOND_BAD_REQUEST', missing ? `${name} is missing` : `${name} ${first?.message ?? 'is not valid'}`, 'the request schema is at GET /openapi.json');
    },
  });

  const context: ErrorContext = { bodyLimit: options.bodyLimit, bodyLimitHint: options.bodyLimitHint };
  const routes: RoutePattern[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) if (METHODS.includes(method)) routes.push({ method, path: route.url });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: options.title, description: options.description, version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: options.bearerDescription } } },
      security: [{ bearer: [] }],
    },
  });

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const limit = request.routeOptions.bodyLimit ?? options.bodyLimit;
    const answer = errorAnswer(error, { ...context, bodyLimit: limit });
    if (answer.unexpected) request.log.error({ err: error, method: request.method, path: pathOf(request.url) }, 'request failed');
    else if (answer.status === 503) request.log.warn({ code: answer.body.code, error: answer.body.error, path: pathOf(request.url) }, 'answering 503');
    // The rest of a too large body is drained, not read into memory: destroying the socket
    // would lose the 413 answer.
    if (answer.status === 413) request.raw.resume();
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.end();
      return;
    }
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });

  app.setNotFoundHandler((request) => {
    const path = pathOf(request.url);
    const match = matchRoute(request.method, path, routes);
    if (match.kind === 'method-not-allowed') {
      throw new ApiError('DIAMOND_METHOD_NOT_ALLOWED', `${request.method} is not supported on ${path}`, `use ${match.allow.join(' or ')}`, { allow: match.allow.join(', ') });
    }
    throw new ApiError('DIAMOND_NO_ROUTE', `no route ${request.method} ${path}`, 'GET /openapi.json lists the routes');
  });

  app.addHook('onResponse', (request, reply, done) => {
    if (options.logger.isLevelEnabled('debug')) request.log.debug({ method: request.method, path: pathOf(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });

  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } satisfies RouteSettings }, () => app.swagger());
  return app;
}

/** Whether the route of this request needs no credential. */
export function isPublicRoute(request: FastifyRequest): boolean {
  return (request.routeOptions.config as RouteSettings).public === true;
}

export interface ListenOptions {
  readonly port: number;
  readonly host: string;
  /** Named in the busy-port error, e.g. 'ingest API'. */
  readonly api: string;
  /** How the operator changes the port. */
  readonly change: { readonly flag?: string; readonly env: string };
}

/** Listens (port 0 = a free one) and resolves with the base URL; a busy port is a PortInUseError. */
export async function listen(app: HttpServer, options: ListenOptions): Promise<string> {
  try {
    await app.listen({ port: options.port, host: options.host, listenTextResolver: () => '' });
  } catch (error) {
    await app.close().catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError(options.api, options.port, options.host, options.change, error);
    throw error;
  }
  const address = app.server.address() as AddressInfo;
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}
