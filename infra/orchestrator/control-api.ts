/**
 * The orchestrator's HTTP control API (node:http, no framework). Every /v1 call needs
 * `Authorization: Bearer <token>` with a role (viewer < deployer < admin; tokens.ts):
 *
 *   GET    /healthz                                   no token
 *   GET    /v1/status                                 viewer    { leader, jobs, endpoints }
 *   POST   /v1/deployments                            deployer  { usecase, variant?, dir?, startingOffsets?, trigger? } → 202 { deployment }
 *   DELETE /v1/deployments/<usecase>/<variant>        deployer  200, 404 when not deployed
 *   GET    /v1/jobs/<usecase>/<variant>/logs          viewer    ?lines=N&follow=1 (text)
 *   GET    /v1/events                                 viewer    server-sent events; ?since=ISO | ?last=N, ?follow=0
 *   GET    /v1/ab/<usecase>                           viewer    ?days=N&variants=A,B (what `diamond ab --json` prints)
 *   POST   /v1/tokens                                 admin     { role, name? } → 201 { token, role, name }
 *   POST   /v1/replay                                 deployer
 *
 * Errors are `{ error, hint, code }`: 400 malformed request (naming the field), 401 no or
 * unknown token (with `WWW-Authenticate: Bearer`), 403 role too low (naming the role), 404,
 * 405, 413 body too large, 422 the deploy was refused (what to fix), 503 a service is down.
 *
 * It changes only the desired state (Redis) and publishes lifecycle events; the reconcile
 * loop (`Reconciler`, possibly in another process) acts on it.
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError, errorMessage, ServiceUnavailableError } from '../../shared/errors.ts';
import { createKafka, ensureTopics } from '../../shared/kafka.ts';
import type { Logger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { AbSource } from './ab-source.ts';
import { deployUsecase, jobStatuses, replayUsecase, resolveUsecaseFolder, undeployUsecase } from './control.ts';
import {
  authorize, bearerToken, checkUsecaseName, checkVariantName, HttpError, matchRoute, parseCount, parseDeployBody, parseEventsQuery, parseTokenBody,
  statusForError, type EventsQuery, type RouteName,
} from './control-routes.ts';
import { feedRange, openEventFeed, type FeedRange, type OpenFeed } from './event-feed.ts';
import { followLog, tailLines } from './log-tail.ts';
import { EventPublisher } from './events.ts';
import type { OrchestratorOptions } from './options.ts';
import { jobIdFor } from './state.ts';
import { DeploymentStore } from './store.ts';
import { TokenStore, type TokenGrant } from './tokens.ts';

export interface ControlApiDeps {
  /** Where state and events live (tests pass isolated ones). */
  readonly options: OrchestratorOptions;
  readonly logger: Logger;
  /**
   * The platform's endpoints, reported by /v1/status; the caller (the CLI, the platform)
   * knows them, so the orchestrator never reads the platform's file. The control URL's
   * port is replaced by the one this API really listens on.
   */
  readonly endpoints: { readonly controlUrl: string; readonly ingestUrl: string; readonly feedbackUrl: string };
}

export interface ControlApiListen {
  /** Default config.http.controlPort; 0 = any free port. */
  readonly port?: number;
  /** Default config.http.host. */
  readonly host?: string;
  /** Interval of SSE keep-alive comments. */
  readonly heartbeatMs?: number;
}

export interface ControlApi {
  readonly url: string;
  /** Ends open streams, stops listening, disconnects its clients. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;
/** Each events stream holds a Kafka consumer; more than this are refused (503). */
const MAX_EVENT_STREAMS = 32;

interface Call {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The token's grant (null on routes without a role). */
  readonly caller: TokenGrant | null;
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  response.end(text);
}

/**
 * The JSON body, or 413 past the limit / 400 when it is not JSON. The rest of a too large
 * body is drained, not read (destroying the socket would lose the 413).
 */
async function readJson(request: IncomingMessage): Promise<unknown> {
  const tooLarge = (): HttpError => new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`, 'send only the documented fields', 'DIAMOND_BODY_TOO_LARGE', { connection: 'close' });
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    request.resume();
    throw tooLarge();
  }
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      request.off('data', onData);
      request.resume();
      reject(tooLarge());
    };
    request.on('data', onData);
    request.once('end', () => resolve(Buffer.concat(chunks)));
    request.once('error', reject);
  });
  const text = body.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'the body is not JSON', 'send a JSON object with content-type application/json', 'DIAMOND_BAD_REQUEST');
  }
}

const isOn = (value: string | null): boolean => value !== null && ['1', 'true', 'yes'].includes(value);

export async function startControlApi(config: DiamondConfig, deps: ControlApiDeps, listen: ControlApiListen = {}): Promise<ControlApi> {
  const { options } = deps;
  const log = deps.logger.child({ component: 'control-api' });
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  const rolloutRedis = createRedis(config); // downstream's keys carry no orchestrator prefix
  for (const client of [redis, rolloutRedis]) client.on('error', (error: Error) => log.warn({ error: error.message }, 'redis connection error'));
  await redis.connect().catch((cause: unknown) => {
    rolloutRedis.disconnect();
    throw new ServiceUnavailableError('Redis', config.redis.url, { cause });
  });
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-control-api`, logger: log });
  const admin = kafka.admin();
  const producer = kafka.producer();
  try {
    await Promise.all([admin.connect(), producer.connect()]);
    await ensureTopics(admin, [{ topic: options.topics.events, partitions: 1 }]);
  } catch (cause) {
    await Promise.all([admin.disconnect(), producer.disconnect()]).catch(() => undefined);
    redis.disconnect();
    rolloutRedis.disconnect();
    throw new ServiceUnavailableError('Kafka', config.kafka.brokers.join(','), { cause });
  }
  const store = new DeploymentStore(redis);
  const tokens = new TokenStore(redis);
  const events = new EventPublisher(producer, options.topics.events);
  const abSource = new AbSource(config, rolloutRedis);
  /** Open streams (events, followed logs), ended by `close()`. */
  const streams = new Set<() => void>();
  /** Event streams until their consumer is disconnected; `close()` waits for them. */
  const eventStreams = new Set<Promise<void>>();
  const heartbeatMs = listen.heartbeatMs ?? 15_000;
  let endpoints = deps.endpoints;

  const handlers: Record<RouteName, (call: Call) => Promise<void>> = {
    healthz: async ({ response }) => {
      const redisOk = await redis.ping().then(() => true, () => false);
      sendJson(response, redisOk ? 200 : 503, { status: redisOk ? 'ok' : 'degraded', redis: redisOk ? 'ok' : 'unreachable' });
    },

    status: async ({ response }) => {
      const [leader, jobs] = await Promise.all([store.leaseHolder(), jobStatuses(store, admin, options.topics.input, options.jobPrefix)]);
      sendJson(response, 200, { leader, jobs, endpoints });
    },

    deploy: async ({ request, response, caller }) => {
      const body = parseDeployBody(await readJson(request));
      const folder = resolveUsecaseFolder(config, body.usecase, body.dir);
      const settings = { ...(body.startingOffsets ? { startingOffsets: body.startingOffsets } : {}), ...(body.trigger ? { trigger: body.trigger } : {}) };
      const who = { caller: caller?.name, usecase: body.usecase, variant: body.variant };
      try {
        const deployment = await deployUsecase(config, store, events, { usecase: body.usecase, variant: body.variant, folder, settings }, options.jobPrefix, options.topics.feedbackSubject ? { feedbackSubject: options.topics.feedbackSubject } : {});
        log.info({ ...who, version: deployment.version, generation: deployment.generation, folder }, 'deployed');
        sendJson(response, 202, { deployment });
      } catch (error) {
        log.info({ ...who, folder, refused: errorMessage(error) }, 'deploy refused');
        throw error;
      }
    },

    undeploy: async ({ response, params, caller }) => {
      const usecase = checkUsecaseName(params['usecase']);
      const variant = checkVariantName(params['variant']);
      if (!(await undeployUsecase(store, events, usecase, variant, options.jobPrefix))) {
        throw new HttpError(404, `${usecase} variant ${variant} is not deployed`, 'see what runs with `npx diamond status`', 'DIAMOND_NOT_DEPLOYED');
      }
      log.info({ caller: caller?.name, usecase, variant }, 'undeployed');
      sendJson(response, 200, { undeployed: { usecase, variant } });
    },

    logs: async ({ response, params, query }) => {
      const usecase = checkUsecaseName(params['usecase']);
      const variant = checkVariantName(params['variant']);
      const lines = parseCount(query.get('lines'), 'lines', 100, 100_000);
      const jobId = jobIdFor(usecase, variant, options.jobPrefix);
      const latestFile = async (): Promise<string | null> => (await store.getJob(jobId))?.lastLogFile ?? null;
      const noLog = new HttpError(404, `no log for ${usecase} variant ${variant}`, 'it has not been started yet; see `npx diamond status`', 'DIAMOND_NO_LOG');
      const logFile = await latestFile();
      if (!logFile || !existsSync(logFile)) throw noLog;
      const { text, size } = await tailLines(logFile, lines).catch(() => { throw noLog; });
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-log-file': logFile });
      response.write(text);
      if (!isOn(query.get('follow'))) return void response.end();
      // A poll in flight may finish after the client left: never write after the end.
      const follower = followLog(logFile, size, { write: (chunk) => { if (!response.writableEnded) response.write(chunk); }, latestFile });
      const end = (): void => {
        follower.stop();
        streams.delete(end);
        if (!response.writableEnded) response.end();
      };
      streams.add(end);
      response.once('close', end);
    },

    events: async ({ response, query }) => {
      const parsed = parseEventsQuery(query);
      if (eventStreams.size >= MAX_EVENT_STREAMS) {
        throw new HttpError(503, `${eventStreams.size} event streams are open already`, 'close another `diamond events --follow` or retry later', 'DIAMOND_TOO_MANY_STREAMS', { 'retry-after': '5' });
      }
      // Offsets are taken before the answer starts: whatever is published once a client
      // sees the 200 reaches it.
      const range = await feedRange(admin, options.topics.events, parsed);
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      response.write(': connected\n\n');
      const stream = serveEvents(response, parsed, range);
      eventStreams.add(stream);
      await stream.finally(() => eventStreams.delete(stream));
    },

    ab: async ({ response, params, query }) => {
      const usecase = checkUsecaseName(params['usecase']);
      const days = parseCount(query.get('days'), 'days', 1, 60);
      const variants = query.get('variants')?.split(',').map((v) => v.trim()).filter(Boolean).map((v) => checkVariantName(v, 'variants'));
      sendJson(response, 200, await abSource.compare(usecase, days, variants?.length ? variants : undefined));
    },

    createToken: async ({ request, response, caller }) => {
      const body = parseTokenBody(await readJson(request));
      const name = body.name ?? body.role;
      const token = await tokens.add(body.role, name);
      log.info({ caller: caller?.name, role: body.role, name }, 'token created');
      sendJson(response, 201, { token, role: body.role, name });
    },

    replay: async ({ request, response, caller }) => {
      const body = await readJson(request);
      const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
      const usecase = checkUsecaseName(fields['usecase']);
      const variant = fields['variant'] === undefined ? 'A' : checkVariantName(fields['variant']);
      if (typeof fields['since'] !== 'string') throw new HttpError(400, 'since is missing', 'give an ISO-8601 time, e.g. {"since": "2026-11-22T10:00:00Z"}', 'DIAMOND_BAD_REQUEST');
      const replay = await replayUsecase(store, events, { usecase, variant, since: fields['since'] }, options.jobPrefix);
      log.info({ caller: caller?.name, usecase, variant, since: replay.since }, 'replay requested');
      sendJson(response, 202, { replay });
    },
  };

  /** One SSE client: its feed's events until it leaves, the feed ends, or `close()`. */
  async function serveEvents(response: ServerResponse, query: EventsQuery, range: FeedRange): Promise<void> {
    let ended = false;
    let onEnded = (): void => undefined;
    const gone = new Promise<void>((resolve) => { onEnded = resolve; });
    const write = (text: string): void => {
      if (!ended) response.write(text);
    };
    const heartbeat = setInterval(() => write(': keep-alive\n\n'), heartbeatMs);
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      streams.delete(end);
      response.end();
      onEnded();
    };
    const fail = (error: unknown): void => {
      log.warn({ error: errorMessage(error) }, 'events stream failed');
      write(`event: error\ndata: ${JSON.stringify({ error: errorMessage(error) })}\n\n`);
      end();
    };
    streams.add(end);
    response.once('close', end); // the client left (or the answer ended)
    let feed: OpenFeed;
    try {
      feed = await openEventFeed(kafka, admin, options.topics.events, query, range, {
        onEvent: (event) => {
          write(`id: ${event.partition}-${event.offset}\nevent: lifecycle\ndata: ${JSON.stringify(event.value)}\n\n`);
        },
        onCaughtUp: (replayed) => {
          if (!query.follow) end();
          else write(`: caught up (${replayed} replayed)\n\n`);
        },
        onError: fail,
      }, log);
    } catch (error) {
      fail(error);
      return;
    }
    await gone;
    await feed.close();
  }

  async function handle(request: IncomingMessage, response: ServerResponse, noteCaller: (grant: TokenGrant) => void): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const match = matchRoute(request.method ?? 'GET', url.pathname);
    if (match.kind === 'not-found') throw new HttpError(404, `no route ${url.pathname}`, 'see the route list in infra/orchestrator/control-api.ts or the README', 'DIAMOND_NO_ROUTE');
    if (match.kind === 'method-not-allowed') {
      throw new HttpError(405, `${request.method ?? ''} is not supported on ${url.pathname}`, `use ${match.allow.join(' or ')}`, 'DIAMOND_METHOD_NOT_ALLOWED', { allow: match.allow.join(', ') });
    }
    const presented = bearerToken(request.headers.authorization);
    const grant = match.route.role && presented ? await tokens.verify(presented) : null;
    if (grant) noteCaller(grant);
    const decision = authorize(match.route.role, presented, grant);
    if (!decision.ok) throw decision.error;
    await handlers[match.route.name]({ request, response, params: match.params, query: url.searchParams, caller: grant });
  }

  function answerError(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    const status = statusForError(error);
    if (status === 500) log.error({ err: error, method: request.method, path: request.url }, 'control request failed');
    else if (status === 503) log.warn({ error: errorMessage(error), method: request.method, path: request.url }, 'control request failed: a service is unavailable');
    if (response.headersSent) {
      response.end();
      return;
    }
    if (error instanceof HttpError) return sendJson(response, status, { error: error.message, hint: error.hint, code: error.code }, error.headers);
    if (error instanceof DiamondError) return sendJson(response, status, { error: error.message, hint: error.hint ?? '', code: error.code }, status === 503 ? { 'retry-after': '5' } : {});
    sendJson(response, 500, { error: `internal error: ${errorMessage(error)}`, hint: 'see the orchestrator log', code: 'DIAMOND_INTERNAL' });
  }

  const server = createServer((request, response) => {
    const started = performance.now();
    let caller: string | undefined;
    response.once('close', () => {
      log.debug({ method: request.method, path: request.url, status: response.statusCode, ms: Math.round(performance.now() - started), caller }, 'request');
    });
    handle(request, response, (grant) => { caller = grant.name; }).catch((error: unknown) => answerError(request, response, error));
  });
  server.keepAliveTimeout = 65_000;

  const port = listen.port ?? config.http.controlPort;
  const host = listen.host ?? config.http.host;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    await shutdownClients();
    const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
    throw new DiamondError(inUse ? `port ${port} on ${host} is in use` : `the control API could not listen on ${host}:${port}`, {
      code: 'DIAMOND_PORT_IN_USE',
      hint: 'another orchestrator may be running (`npx diamond status`); or set DIAMOND_CONTROL_PORT',
      cause: error,
    });
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  // What /v1/status reports: the configured endpoints, with the port this API really got.
  endpoints = { ...deps.endpoints, controlUrl: withPort(deps.endpoints.controlUrl, address.port) };
  log.info({ url }, 'control API listening');

  async function shutdownClients(): Promise<void> {
    await Promise.all([producer.disconnect(), admin.disconnect(), abSource.close()]).catch(() => undefined);
    await redis.quit().catch(() => redis.disconnect());
    rolloutRedis.disconnect();
  }

  return {
    url,
    close: async () => {
      for (const end of [...streams]) end();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await Promise.all([...eventStreams]);
      await shutdownClients();
    },
  };
}

/** `url` (`http://host:port`) with another port; the host stays as the caller gave it. */
function withPort(url: string, port: number): string {
  return url.replace(/:\d+$/, `:${port}`);
}
