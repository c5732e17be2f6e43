/**
 * The orchestrator's HTTP control API (fastify, through the shared kit). Every /v1 call needs
 * `Authorization: Bearer <token>` with a role (viewer < runner < deployer < admin; shared/operator-tokens.ts):
 *
 *   GET    /livez                                     no token  the process answers
 *   GET    /readyz                                    no token  Redis answers (503 otherwise); /healthz is its alias
 *   GET    /metrics                                   viewer    Prometheus text format (orchestrator-metrics.ts)
 *   GET    /v1/status                                 viewer    { leader, jobs, pool, history, runs (the latest 20, across functions), health (ingest, feedback /readyz), endpoints }
 *   POST   /v1/deployments                            deployer  { usecase, variant?, dir?, startingOffsets?, trigger? } → 202 { deployment }
 *   DELETE /v1/deployments/<usecase>/<variant>        deployer  200, 404 when not deployed
 *   GET    /v1/jobs/<usecase>/<variant>/logs          viewer    ?lines=N&follow=1 (text)
 *   GET    /v1/events                                 viewer    server-sent events; ?since=ISO | ?last=N, ?follow=0
 *   GET    /v1/ab/<usecase>                           viewer    ?days=N&variants=A,B, relayed from downstream's feedback API
 *   GET    /openapi.json                              no token  the OpenAPI 3.1 document
 *   POST   /v1/tokens                                 admin     { role, name? } → 201 { token, role, name }
 *   POST   /v1/replay                                 deployer
 *   POST   /v1/backfill                               deployer  { usecase, variant?, since } → 202 { backfill }: over the archived history, then the stream (docs/RUNS.md)
 *   GET    /v1/whoami                                 viewer    { name, role, id, expiresAt? } of the calling token
 *   GET    /v1/rollouts/<usecase>                     viewer    { usecase, weights } (null: none)
 *   PUT    /v1/rollouts/<usecase>                     deployer  { weights: { A: 90, B: 10 } } → { usecase, before, after }; publishes rollout-changed
 *   GET    /ui, /ui/app.js, /ui/app.css               no token  the dashboard (dashboard-assets.ts); it sends a token for data
 *   POST   /v1/runs                                   runner    { function: "usecase.function", params } ?wait=30s → 200 { run } ended in time, else 202 { run } (docs/RUNS.md)
 *   GET    /v1/runs?function=usecase.function         viewer    { runs } newest first, ?limit=N
 *   GET    /v1/runs/<id>                              viewer    { run }: state, timings, result or error (user file and line)
 *   DELETE /v1/runs/<id>                              runner    cancels: a queued run is removed, a running one cancelled; 409 when ended
 *   GET    /v1/runs/<id>/events                       viewer    server-sent events (event: run) until the run ends
 *   POST   /v1/sql                                    runner    { sql, limit? } → { query: { columns, rows, truncated, timings } }, read-only (docs/RUNS.md)
 *
 * The token is checked before routing (any path but the public ones without a valid token is
 * 401; with one, an unknown path is 404), the role after it. Errors are `{ error, code, hint }`
 * (docs/ERRORS.md): 400 malformed request (naming the field), 401 no or unknown token (with
 * `WWW-Authenticate: Bearer`), 403 role too low (naming the role), 404, 405, 413 body too
 * large, 422 the deploy was refused (what to fix), 503 a service is down.
 *
 * For deployments it changes only the desired state (Redis) and publishes lifecycle events; the
 * reconcile loop (`Reconciler`, possibly in another process) acts on it. Function runs are its
 * own: it checks them against the catalog (function-catalog.ts, run-params.ts), queues them
 * (run-dispatcher.ts) on function sessions it starts and stops (function-sessions.ts), keeps
 * them in Redis (run-store.ts) and publishes their events on diamond.runs.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { existsSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { DiamondConfig } from '../../shared/config.ts';
import { ApiError, errorMessage, ServiceUnavailableError } from '../../shared/errors.ts';
import { bearerToken } from '../../shared/http/bearer.ts';
import { abReportPath, feedbackApiClient } from '../../shared/http/feedback-client.ts';
import { readinessAnswer } from '../../shared/http/health-routes.ts';
import { createHttpServer, isPublicRoute, listen as listenOn, type RouteSettings } from '../../shared/http/server.ts';
import { StreamQuota } from '../../shared/http/stream-quota.ts';
import { createKafka, ensureTopics } from '../../shared/kafka.ts';
import type { Logger } from '../../shared/logger.ts';
import { observeRequests } from '../../shared/metrics/request-metrics.ts';
import { createRedis, redisUnavailable } from '../../shared/redis.ts';
import { backfillUsecase, changeRollout, deployUsecase, jobStatuses, replayUsecase, resolveUsecaseFolder, undeployUsecase } from './control.ts';
import { poolStatus } from './driver-pool.ts';
import { ROUTE_SCHEMAS } from './control-schemas.ts';
import {
  authorize, checkUsecaseName, checkVariantName, parseCount, parseDeployBody, parseEventsQuery, parseRolloutBody, parseRunBody, parseSqlBody, parseTokenBody, parseWait, ROUTES,
  type EventsQuery, type RouteName,
} from './control-routes.ts';
import { feedRange, openEventFeed, type FeedRange, type OpenFeed } from './event-feed.ts';
import { followLog, tailLines } from './log-tail.ts';
import { EventPublisher } from './events.ts';
import type { Admin } from 'kafkajs';
import { endOffsetsIfExists, readJobOffsets } from './offsets.ts';
import { OrchestratorMetrics } from './orchestrator-metrics.ts';
import type { OrchestratorOptions } from './options.ts';
import { firingByRule } from './alert-rules.ts';
import { jobIdFor, partitionLag } from './state.ts';
import { DeploymentStore } from './store.ts';
import { TokenStore, type Role, type TokenGrant } from '../../shared/operator-tokens.ts';
import { RolloutStore } from '../../shared/rollout-weights.ts';
import { DASHBOARD_HEADERS, loadDashboardAssets, type DashboardAsset } from './dashboard-assets.ts';
import { buildRunEvent, type RunEvent } from '../../shared/messages.ts';
import { FEEDBACK_WRITER_GROUP, Topics } from '../../shared/topics.ts';
import { FunctionCatalog } from './function-catalog.ts';
import { FunctionSessionPool, FunctionSessions } from './function-sessions.ts';
import { JobLauncher } from './launcher.ts';
import { functionsDirOf } from './options.ts';
import { recordsCheckpointOf } from './history-boundary.ts';
import { RunDispatcher } from './run-dispatcher.ts';
import { SqlQueries } from './sql-queries.ts';
import { checkRunParams } from './run-params.ts';
import { ENDED_STATES, RunStore, type RunRecord } from './run-store.ts';

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
  /** Served at /metrics; `serve orchestrator` shares the reconciler's. Default: a registry of its own. */
  readonly metrics?: OrchestratorMetrics;
  /**
   * Redis key prefix of downstream's keys, where the rollout weights the feedback writer reads
   * live (shared/rollout-weights.ts). Default none, as `diamond serve downstream` uses.
   */
  readonly rolloutKeyPrefix?: string;
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
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The token's grant (null on routes without a role). */
  readonly caller: TokenGrant | null;
}

/** Route settings of the control API: the role a route needs (null = no token). */
interface ControlRouteSettings extends RouteSettings {
  readonly role: Role | null;
}

/** How long status waits for another process' /readyz: a hung one must not hold the dashboard's poll. */
const READINESS_TIMEOUT_MS = 1000;

/**
 * The health the dashboard draws on the topology's nodes: upstream's ingest API (the sources'
 * way in) and downstream's process (the writers and the feedback API customers read), by their
 * own /readyz. `unreachable`: nothing answered in time.
 */
async function readinessOf(baseUrl: string): Promise<'ready' | 'not ready' | 'unreachable'> {
  try {
    const answer = await fetch(new URL('/readyz', baseUrl), { signal: AbortSignal.timeout(READINESS_TIMEOUT_MS) });
    await answer.body?.cancel().catch(() => undefined);
    return answer.ok ? 'ready' : 'not ready';
  } catch {
    return 'unreachable';
  }
}

/**
 * The topology's right-hand edges: how far the jobs have written the output topic and how far
 * the feedback writer's group has committed it (sums over partitions; the dashboard turns two
 * samples into rates, the difference is the writer's lag). Nulls when Kafka does not answer.
 */
async function outputFlow(admin: Admin, topic: string, writerGroup: string): Promise<{ written: number | null; committed: number | null; writerLag: number | null }> {
  try {
    const ends = await endOffsetsIfExists(admin, topic);
    if (ends === null) return { written: null, committed: null, writerLag: null };
    const committed = await readJobOffsets(admin, writerGroup, topic);
    const written = Object.values(ends).reduce((sum, offset) => sum + offset, 0);
    // A partition the group never committed (-1) has all of its messages still to write.
    const done = Object.entries(ends).reduce((sum, [partition]) => sum + Math.max(0, committed[partition] ?? 0), 0);
    const anyCommitted = Object.values(committed).some((offset) => offset >= 0);
    return { written, committed: anyCommitted ? done : null, writerLag: anyCommitted ? written - done : null };
  } catch {
    return { written: null, committed: null, writerLag: null };
  }
}

/** `{ usecase, variant?, since }` of a replay or a backfill; 400 naming the field that is wrong. */
function parseSinceBody(body: unknown, sinceHint: string): { usecase: string; variant: string; since: string } {
  const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const usecase = checkUsecaseName(fields['usecase']);
  const variant = fields['variant'] === undefined ? 'A' : checkVariantName(fields['variant']);
  if (typeof fields['since'] !== 'string') throw new ApiError('DIAMOND_BAD_REQUEST', 'since is missing', sinceHint);
  return { usecase, variant, since: fields['since'] };
}

/** Runs /v1/status lists (the dashboard's runs table): the latest, across functions. */
const RECENT_RUNS_SHOWN = 20;

/** What status says of a run: no params or result (they may be large; GET /v1/runs/<id> has them). */
function runSummary(run: RunRecord): Record<string, unknown> {
  return {
    id: run.id, function: run.function, state: run.state, by: run.by, queuedAt: run.queuedAt, startedAt: run.startedAt, endedAt: run.endedAt,
    error: run.error ? { code: run.error.code, message: run.error.message, file: run.error.file ?? null, line: run.error.line ?? null } : null,
  };
}

const isOn = (value: string | null): boolean => value !== null && ['1', 'true', 'yes'].includes(value);

export async function startControlApi(config: DiamondConfig, deps: ControlApiDeps, listen: ControlApiListen = {}): Promise<ControlApi> {
  const { options } = deps;
  const log = deps.logger.child({ component: 'control-api' });
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  redis.on('error', (error: Error) => log.warn({ error: error.message }, 'redis connection error'));
  await redis.connect().catch((cause: unknown) => {
    throw redisUnavailable(config, cause);
  });
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-control-api`, logger: log });
  const runsTopic = options.topics.runs ?? Topics.runs;
  const admin = kafka.admin();
  const producer = kafka.producer();
  try {
    await Promise.all([admin.connect(), producer.connect()]);
    await ensureTopics(admin, [{ topic: options.topics.events, partitions: 1 }, { topic: runsTopic, partitions: 1 }]);
  } catch (cause) {
    await Promise.all([admin.disconnect(), producer.disconnect()]).catch(() => undefined);
    redis.disconnect();
    throw new ServiceUnavailableError('Kafka', config.kafka.brokers.join(','), { cause });
  }
  const store = new DeploymentStore(redis);
  const tokens = new TokenStore(redis);
  // Downstream's namespace (not the orchestrator's): the writer reads the weights from there.
  const rolloutRedis = redis.duplicate({ keyPrefix: deps.rolloutKeyPrefix ?? '' });
  rolloutRedis.on('error', (error: Error) => log.warn({ error: error.message }, 'redis connection error (rollouts)'));
  const rollouts = new RolloutStore(rolloutRedis);
  const dashboardAsset = loadDashboardAssets();
  const events = new EventPublisher(producer, options.topics.events);
  /** Open streams (events, followed logs), ended by `close()`. */
  const streams = new Set<() => void>();
  /** Streams per token: one token cannot hold every connection. */
  const streamQuota = new StreamQuota(config.http.streamsPerClient, 'close another `diamond events --follow` or `diamond logs --follow` of this token, or retry after Retry-After');
  /** Event streams until their consumer is disconnected; `close()` waits for them. */
  const eventStreams = new Set<Promise<void>>();
  const heartbeatMs = listen.heartbeatMs ?? 15_000;
  let endpoints = deps.endpoints;
  const metrics = deps.metrics ?? new OrchestratorMetrics();
  metrics.watchJobs(async () => {
    const [statuses, ends] = await Promise.all([jobStatuses(store, admin, options.topics.input, options.jobPrefix), endOffsetsIfExists(admin, options.topics.input).catch(() => null)]);
    return statuses.map((status) => ({ job: status.job, usecase: status.usecase, variant: status.variant, state: status.state, lagByPartition: ends ? partitionLag(status.committedOffsets, ends) : {} }));
  });
  metrics.watchAlerts(async () => firingByRule((await store.alertStatuses()).values()));
  metrics.watchPool(() => poolStatus(config, store));
  const runStore = new RunStore(redis, config.runs.resultTtlMs);
  metrics.watchActiveRuns(() => runStore.activeCounts());
  for (const run of await runStore.failInterrupted()) log.warn({ run: run.id, function: run.function }, 'a run the previous orchestrator left unfinished is failed');
  const catalog = new FunctionCatalog(config);
  const launcher = new JobLauncher(config, options.topics, { jobs: options.jobsDir, checkpoints: options.checkpointsDir }, log);
  const sessions = new FunctionSessions(config, launcher, options.functionsDir ?? functionsDirOf(config), log);
  const dispatcher = new RunDispatcher({
    store: runStore, sessions: new FunctionSessionPool(sessions), killGraceMs: config.runs.killGraceMs, queueLimit: config.runs.queueLimit, log,
    observer: { countRun: (fn, state) => metrics.countRun(fn, state), observeDuration: (fn, seconds) => metrics.observeRunDuration(fn, seconds) },
    publish: async (event, fields) => {
      await producer.send({ topic: runsTopic, acks: -1, messages: [{ key: fields.run, value: JSON.stringify(buildRunEvent(event, fields)) }] });
    },
  });
  const sqlQueries = new SqlQueries(sessions, config.sql, log);
  const ready = async (reply: FastifyReply): Promise<void> => {
    const answer = await readinessAnswer(async () => {
      const redisOk = await redis.ping().then(() => true, () => false);
      return { ready: redisOk, body: { redis: redisOk ? 'ok' : 'unreachable' } };
    });
    await reply.code(answer.status).send(answer.body);
  };

  const handlers: Record<RouteName, (call: Call) => Promise<void>> = {
    livez: async ({ reply }) => {
      await reply.send({ status: 'ok' });
    },
    readyz: async ({ reply }) => ready(reply),
    healthz: async ({ reply }) => ready(reply),
    metrics: async ({ reply }) => {
      await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },

    status: async ({ reply }) => {
      const [leader, jobs, pool, history, recentRuns, ingest, feedback, output] = await Promise.all([
        store.leaseHolder(), jobStatuses(store, admin, options.topics.input, options.jobPrefix), poolStatus(config, store), store.historyArchiveStatus(), runStore.recent(RECENT_RUNS_SHOWN),
        readinessOf(endpoints.ingestUrl), readinessOf(endpoints.feedbackUrl), outputFlow(admin, options.topics.output, options.writerGroup ?? FEEDBACK_WRITER_GROUP),
      ]);
      await reply.send({
        leader, jobs, pool, history, runs: recentRuns.map(runSummary), health: { ingest, feedback }, endpoints, flows: { output },
        topics: { input: options.topics.input, output: options.topics.output, events: options.topics.events },
      });
    },

    deploy: async ({ request, reply, caller }) => {
      const body = parseDeployBody(request.body);
      const folder = resolveUsecaseFolder(config, body.usecase, body.dir);
      const settings = { ...(body.startingOffsets ? { startingOffsets: body.startingOffsets } : {}), ...(body.trigger ? { trigger: body.trigger } : {}) };
      const who = { caller: caller?.name, usecase: body.usecase, variant: body.variant };
      try {
        const deployment = await deployUsecase(config, store, events, { usecase: body.usecase, variant: body.variant, folder, settings, ...(body.from ? { from: body.from } : {}) }, options.jobPrefix, options.topics.feedbackSubject ? { feedbackSubject: options.topics.feedbackSubject } : {});
        log.info({ ...who, version: deployment.version, generation: deployment.generation, folder }, 'deployed');
        await reply.code(202).send({ deployment });
      } catch (error) {
        log.info({ ...who, folder, refused: errorMessage(error) }, 'deploy refused');
        throw error;
      }
    },

    undeploy: async ({ reply, params, caller }) => {
      const usecase = checkUsecaseName(params['usecase']);
      const variant = checkVariantName(params['variant']);
      if (!(await undeployUsecase(store, events, usecase, variant, options.jobPrefix))) {
        throw new ApiError('DIAMOND_NOT_DEPLOYED', `${usecase} variant ${variant} is not deployed`, 'see what runs with `npx diamond status`');
      }
      log.info({ caller: caller?.name, usecase, variant }, 'undeployed');
      await reply.send({ undeployed: { usecase, variant } });
    },

    logs: async ({ reply, params, query, caller }) => {
      const usecase = checkUsecaseName(params['usecase']);
      const variant = checkVariantName(params['variant']);
      const lines = parseCount(query.get('lines'), 'lines', 100, 100_000);
      const jobId = jobIdFor(usecase, variant, options.jobPrefix);
      const latestFile = async (): Promise<string | null> => (await store.getJob(jobId))?.lastLogFile ?? null;
      const noLog = new ApiError('DIAMOND_NO_LOG', `no log for ${usecase} variant ${variant}`, 'it has not been started yet; see `npx diamond status`');
      const logFile = await latestFile();
      if (!logFile || !existsSync(logFile)) throw noLog;
      const { text, size } = await tailLines(logFile, lines).catch(() => { throw noLog; });
      if (!isOn(query.get('follow'))) return void (await reply.type('text/plain; charset=utf-8').header('x-log-file', logFile).send(text));
      const release = streamQuota.acquire(caller?.id ?? 'anonymous');
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-log-file': logFile });
      response.write(text);
      // A poll in flight may finish after the client left: never write after the end.
      const follower = followLog(logFile, size, { write: (chunk) => { if (!response.writableEnded) response.write(chunk); }, latestFile });
      const end = (): void => {
        release();
        follower.stop();
        streams.delete(end);
        if (!response.writableEnded) response.end();
      };
      streams.add(end);
      response.once('close', end);
    },

    events: async ({ reply, query, caller }) => {
      const parsed = parseEventsQuery(query);
      if (eventStreams.size >= MAX_EVENT_STREAMS) {
        throw new ApiError('DIAMOND_TOO_MANY_STREAMS', `${eventStreams.size} event streams are open already`, 'close another `diamond events --follow` or retry later', { 'retry-after': '5' });
      }
      // Offsets are taken before the answer starts: whatever is published once a client
      // sees the 200 reaches it.
      const range = await feedRange(admin, options.topics.events, parsed);
      const release = streamQuota.acquire(caller?.id ?? 'anonymous');
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      response.write(': connected\n\n');
      const stream = serveEvents(response, parsed, range);
      eventStreams.add(stream);
      await stream.finally(() => {
        eventStreams.delete(stream);
        release();
      });
    },

    ab: async ({ request, reply, params, query }) => {
      const usecase = checkUsecaseName(params['usecase']);
      const days = parseCount(query.get('days'), 'days', 1, 60);
      const variants = query.get('variants')?.split(',').map((v) => v.trim()).filter(Boolean).map((v) => checkVariantName(v, 'variants'));
      // Downstream owns the A/B tables; the caller's own token goes along (the same token store).
      const report = await feedbackApiClient(config, bearerToken(request.headers.authorization) ?? '').json<unknown>('GET', abReportPath(usecase, days, variants));
      await reply.header('cache-control', 'no-store').send(report);
    },

    createToken: async ({ request, reply, caller }) => {
      const body = parseTokenBody(request.body);
      const name = body.name ?? body.role;
      const token = await tokens.add(body.role, name);
      log.info({ caller: caller?.name, role: body.role, name }, 'token created');
      await reply.code(201).send({ token, role: body.role, name });
    },

    replay: async ({ request, reply, caller }) => {
      const { usecase, variant, since } = parseSinceBody(request.body, 'give an ISO-8601 time, e.g. {"since": "2026-11-22T10:00:00Z"}');
      const replay = await replayUsecase(store, events, { usecase, variant, since }, options.jobPrefix);
      log.info({ caller: caller?.name, usecase, variant, since: replay.since }, 'replay requested');
      await reply.code(202).send({ replay });
    },

    backfill: async ({ request, reply, caller }) => {
      const { usecase, variant, since } = parseSinceBody(request.body, 'give an ISO-8601 time or a duration back, e.g. {"since": "7d"}');
      const source = { recordsCheckpoint: config.history.archive && options.historyArchiveDir ? recordsCheckpointOf(options.historyArchiveDir) : null, inputTopic: options.topics.input };
      const backfill = await backfillUsecase(store, events, { usecase, variant, since }, source, options.jobPrefix);
      log.info({ caller: caller?.name, usecase, variant, since: backfill.since, historyBatch: backfill.historyBatch }, 'backfill requested');
      await reply.code(202).send({ backfill });
    },

    whoami: async ({ reply, caller }) => {
      await reply.header('cache-control', 'no-store').send(caller);
    },

    rollout: async ({ reply, params }) => {
      const usecase = checkUsecaseName(params['usecase']);
      await reply.header('cache-control', 'no-store').send({ usecase, weights: await rollouts.get(usecase) });
    },

    setRollout: async ({ request, reply, params, caller }) => {
      const usecase = checkUsecaseName(params['usecase']);
      const weights = parseRolloutBody(request.body);
      // Weights for a use case nothing deploys would be stored and never used.
      if (!(await store.listDeployments()).some((d) => d.usecase === usecase)) {
        throw new ApiError('DIAMOND_NOT_DEPLOYED', `${usecase} is not deployed`, 'deploy a variant first (`npx diamond deploy <usecase>`); `diamond rollout` also takes use case folders not deployed yet');
      }
      const { before, after } = await changeRollout(rollouts, events, { usecase, weights, by: caller?.name ?? 'control API' }, options.jobPrefix);
      log.info({ caller: caller?.name, usecase, before, after }, 'rollout changed');
      await reply.send({ usecase, before, after });
    },

    createRun: async ({ request, reply, query, caller }) => {
      const body = parseRunBody(request.body);
      const wait = parseWait(query.get('wait'), config.runs.defaultWaitMs, config.runs.maxWaitMs);
      const fn = await catalog.resolve(body.function);
      const params = checkRunParams(fn.name, fn.spec.params, body.params);
      const queued = await dispatcher.submit(fn, params, caller?.name ?? 'anonymous');
      log.info({ caller: caller?.name, run: queued.id, function: fn.name }, 'run queued');
      const run = await dispatcher.waitFor(queued.id, wait);
      await reply.code(ENDED_STATES.has(run.state) ? 200 : 202).header('cache-control', 'no-store').send({ run });
    },

    listRuns: async ({ reply, query }) => {
      const name = query.get('function') ?? '';
      await catalog.resolve(name); // 404 with the functions that exist
      await reply.header('cache-control', 'no-store').send({ runs: await runStore.list(name, parseCount(query.get('limit'), 'limit', 100, 1000)) });
    },

    getRun: async ({ reply, params }) => {
      await reply.header('cache-control', 'no-store').send({ run: await dispatcher.get(params['id'] ?? '') });
    },

    sql: async ({ request, reply, caller }) => {
      const body = parseSqlBody(request.body);
      const query = await sqlQueries.query(body.sql, body.limit, caller?.name ?? 'anonymous');
      await reply.header('cache-control', 'no-store').send({ query });
    },

    cancelRun: async ({ reply, params, caller }) => {
      const run = await dispatcher.cancel(params['id'] ?? '', caller?.name ?? 'anonymous');
      log.info({ caller: caller?.name, run: run.id, state: run.state }, 'run cancel requested');
      await reply.send({ run });
    },

    runEvents: async ({ reply, params, caller }) => {
      const id = params['id'] ?? '';
      const run = await dispatcher.get(id); // 404 before the stream starts
      const release = streamQuota.acquire(caller?.id ?? 'anonymous');
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      const send = (latest: RunRecord, event: RunEvent, at: string, index: number): void => {
        if (response.writableEnded) return;
        const ended = ENDED_STATES.has(latest.state) && event === latest.events.at(-1)?.event;
        response.write(`id: ${index}\nevent: run\ndata: ${JSON.stringify({ event, at, id: latest.id, function: latest.function, state: latest.state, ...(ended ? { run: latest } : {}) })}\n\n`);
      };
      let unsubscribe = (): void => undefined;
      const heartbeat = setInterval(() => { if (!response.writableEnded) response.write(': keep-alive\n\n'); }, heartbeatMs);
      const end = (): void => {
        clearInterval(heartbeat);
        unsubscribe();
        release();
        streams.delete(end);
        if (!response.writableEnded) response.end();
      };
      streams.add(end);
      response.once('close', end);
      // Subscribed before the replay: nothing published meanwhile is lost (events are numbered, so repeats are skipped).
      let sent = 0;
      unsubscribe = dispatcher.subscribe(id, (latest) => {
        for (; sent < latest.events.length; sent++) send(latest, latest.events[sent]!.event, latest.events[sent]!.at, sent);
        if (ENDED_STATES.has(latest.state)) end();
      });
      for (; sent < run.events.length; sent++) send(run, run.events[sent]!.event, run.events[sent]!.at, sent);
      if (ENDED_STATES.has(run.state) || !dispatcher.isActive(id)) end();
    },

    dashboard: async ({ reply }) => sendAsset(reply, dashboardAsset('index.html')),
    dashboardAsset: async ({ reply, params }) => sendAsset(reply, dashboardAsset(params['file'] ?? '')),
  };

  async function sendAsset(reply: FastifyReply, asset: DashboardAsset): Promise<void> {
    await reply.headers(DASHBOARD_HEADERS).type(asset.contentType).send(asset.body);
  }

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

  const app = await createHttpServer({
    title: 'Diamond control API',
    description: 'Deployments, jobs, logs, lifecycle events, replays, tokens and the A/B report of the orchestrator.',
    logger: log,
    bodyLimit: MAX_BODY_BYTES,
    bodyLimitHint: 'send only the documented fields',
    bearerDescription: 'an operator token with a role: viewer < runner < deployer < admin (`npx diamond token add --role <role>`)',
  });
  observeRequests(app, metrics.registry, 'diamond_control_api', 'Time to answer control API requests, by route and status.');
  const grants = new WeakMap<FastifyRequest, TokenGrant>();
  // Before routing: a valid token for every path but the public ones; the role once the route is known.
  app.addHook('onRequest', async (request) => {
    if (isPublicRoute(request)) return;
    const presented = bearerToken(request.headers.authorization);
    const grant = presented ? await tokens.verify(presented) : null;
    if (grant) grants.set(request, grant);
    // An unknown path needs a valid token of any role (then it is 404, or 405).
    const decision = authorize((request.routeOptions.config as Partial<ControlRouteSettings>).role ?? 'viewer', presented, grant);
    if (!decision.ok) throw decision.error;
  });
  for (const route of ROUTES) {
    const config: ControlRouteSettings = { role: route.role, public: route.role === null };
    app.route({
      method: route.method, url: route.path, config, schema: ROUTE_SCHEMAS[route.name],
      handler: async (request, reply) => {
        const query = new URL(request.url, 'http://localhost').searchParams;
        await handlers[route.name]({ request, reply, params: request.params as Record<string, string>, query, caller: grants.get(request) ?? null });
      },
    });
  }

  const port = listen.port ?? config.http.controlPort;
  const host = listen.host ?? config.http.host;
  let url: string;
  try {
    url = await listenOn(app, { port, host, api: 'control API', change: { env: 'DIAMOND_CONTROL_PORT' } });
  } catch (error) {
    await sessions.stopAll();
    await shutdownClients();
    throw error;
  }
  // What /v1/status reports: the configured endpoints, with the port this API really got.
  endpoints = { ...deps.endpoints, controlUrl: withPort(deps.endpoints.controlUrl, Number(new URL(url).port)) };
  log.info({ url }, 'control API listening');

  async function shutdownClients(): Promise<void> {
    await Promise.all([producer.disconnect(), admin.disconnect()]).catch(() => undefined);
    await rolloutRedis.quit().catch(() => rolloutRedis.disconnect());
    await redis.quit().catch(() => redis.disconnect());
  }

  return {
    url,
    close: async () => {
      await dispatcher.close();
      await sessions.stopAll();
      for (const end of [...streams]) end();
      await app.close();
      await Promise.all([...eventStreams]);
      await shutdownClients();
    },
  };
}

/** `url` (`http://host:port`) with another port; the host stays as the caller gave it. */
function withPort(url: string, port: number): string {
  return url.replace(/:\d+$/, `:${port}`);
}
