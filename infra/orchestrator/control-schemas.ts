/**
 * JSON Schemas of the control API's routes: they validate requests before a handler runs
 * (400 naming the field) and make the OpenAPI document at GET /openapi.json.
 */
import type { FastifySchema } from 'fastify';
import { ERROR_BODY_SCHEMA } from '../../shared/http/error-body.ts';
import { HEALTH_SCHEMA } from '../../shared/http/health-routes.ts';
import { jsonAnswer, textAnswer } from '../../shared/http/openapi-responses.ts';
import { ROLES } from '../../shared/operator-tokens.ts';
import type { RouteName } from './control-routes.ts';

const USECASE = { type: 'string', pattern: '^[a-z][a-z0-9_]{0,62}$', description: 'lower_snake_case, e.g. data_quality' } as const;
const VARIANT = { type: 'string', pattern: '^[A-Z]$', description: 'one capital letter: A, B, …' } as const;
const JOB_PARAMS = { type: 'object', required: ['usecase', 'variant'], properties: { usecase: USECASE, variant: VARIANT } } as const;
const ERRORS = { '4xx': ERROR_BODY_SCHEMA, '5xx': ERROR_BODY_SCHEMA } as const;
const RUN_FUNCTION_PATTERN = '^[a-z][a-z0-9_]{0,62}\\.[A-Za-z_][A-Za-z0-9_]{0,62}$';
const RUN_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f-]{36}$', description: 'the run id POST /v1/runs answered' } } } as const;
const FLAG = { type: 'string', description: '1/true/yes or 0/false/no' } as const;

export const ROUTE_SCHEMAS: Readonly<Record<RouteName, FastifySchema>> = {
  livez: { summary: 'Whether the process is alive (no dependency is checked)', security: [], response: { 200: HEALTH_SCHEMA } },
  readyz: { summary: 'Whether Redis answers (503 otherwise)', security: [], response: { 200: HEALTH_SCHEMA, 503: HEALTH_SCHEMA } },
  healthz: { summary: 'Alias of /readyz, kept for existing pollers', security: [], response: { 200: HEALTH_SCHEMA, 503: HEALTH_SCHEMA } },
  metrics: { summary: 'Prometheus metrics: jobs (state, lag, restarts, batches), control API requests, the process', response: { 200: textAnswer('text/plain', 'the Prometheus text format'), ...ERRORS } },
  status: { summary: 'Leader, jobs (state, lag, usage), the driver pool and endpoints', response: { 200: jsonAnswer('the leader, every job, the warm driver pool ({size, ready, starting}), the history archiver ({state, pid, restarts, lastError, logFile, at}; null when none ran), the latest function runs across functions ({id, function, state, by, queuedAt, startedAt, endedAt, error}), the health of upstream and downstream by their /readyz ({ingest, feedback}: ready, not ready or unreachable) and the endpoints', ['leader', 'jobs', 'pool', 'history', 'runs', 'health', 'endpoints']), ...ERRORS } },
  deploy: {
    summary: 'Deploy (or upgrade) a use case variant; validated on its sample first',
    body: {
      type: 'object',
      required: ['usecase'],
      properties: {
        usecase: USECASE,
        variant: VARIANT,
        dir: { type: 'string', minLength: 1, description: "a folder on the orchestrator's machine; default usecases/<usecase>" },
        startingOffsets: { type: 'string', enum: ['earliest', 'latest'] },
        trigger: { type: 'string', minLength: 1, description: 'a duration such as 500ms or 10 seconds' },
        from: { type: 'string', minLength: 1, description: "process the input from this time: ISO-8601, or a duration back such as 7d (within records.normalized's retention); a running job restarts there" },
      },
    },
    response: { 202: jsonAnswer('validated and stored; the orchestrator starts or upgrades it on its next tick', ['deployment']), ...ERRORS },
  },
  undeploy: { summary: 'Stop and forget a use case variant', params: JOB_PARAMS, response: { 200: jsonAnswer('forgotten; the job stops after its batch', ['undeployed']), ...ERRORS } },
  logs: {
    summary: "A job's log: the last lines, then (follow=1) what it appends, as text",
    params: JOB_PARAMS,
    querystring: { type: 'object', properties: { lines: { type: 'string', pattern: '^\\d*$' }, follow: FLAG } },
    response: { 200: textAnswer('text/plain', 'the log lines'), ...ERRORS },
  },
  events: {
    summary: 'Lifecycle events as server-sent events (event: lifecycle): replayed, then followed',
    querystring: { type: 'object', properties: { since: { type: 'string', description: 'ISO-8601 time or epoch ms' }, last: { type: 'string', pattern: '^\\d*$' }, follow: FLAG } },
    response: { 200: textAnswer('text/event-stream', 'server-sent events: event lifecycle, data one event as JSON'), ...ERRORS },
  },
  ab: {
    summary: "A/B comparison of a use case's variants (relayed from downstream's feedback API)",
    params: { type: 'object', required: ['usecase'], properties: { usecase: USECASE } },
    querystring: { type: 'object', properties: { days: { type: 'string', pattern: '^\\d*$' }, variants: { type: 'string', description: 'comma-separated, e.g. A,B' } } },
    response: { 200: jsonAnswer('the comparison', ['usecase', 'days', 'variants']), ...ERRORS },
  },
  createToken: {
    summary: 'Create a token (shown once)',
    body: { type: 'object', required: ['role'], properties: { role: { type: 'string', enum: ROLES }, name: { type: 'string', minLength: 1 } } },
    response: { 201: jsonAnswer('the token, shown this once', ['token', 'role', 'name']), ...ERRORS },
  },
  replay: {
    summary: "Replay a job from a time: its group's offsets are set to that time and it restarts",
    body: { type: 'object', required: ['usecase', 'since'], properties: { usecase: USECASE, variant: VARIANT, since: { type: 'string', description: 'ISO-8601 time' } } },
    response: { 202: jsonAnswer('requested; the job stops after its batch, its group moves back and it starts again', ['replay']), ...ERRORS },
  },
  backfill: {
    summary: "Backfill a stateless job over the archived history: it stops after its batch, runs its transform over the history's records since `since` (the same feedback ids), then its stream goes on from where the history ends",
    body: { type: 'object', required: ['usecase', 'since'], properties: { usecase: USECASE, variant: VARIANT, since: { type: 'string', description: 'ISO-8601 time or a duration back (7d, 12h): records with event_time at or after it' } } },
    response: { 202: jsonAnswer('requested: { job, since, historyBatch, offsets } (where the stream will start)', ['backfill']), ...ERRORS },
  },
  whoami: { summary: "The calling token's name, role and expiry (what the dashboard shows and enables)", response: { 200: jsonAnswer('the grant, never the token', ['name', 'role']), ...ERRORS } },
  rollout: {
    summary: "A use case's A/B rollout weights (null: none, every variant's rows reach customers)",
    params: { type: 'object', required: ['usecase'], properties: { usecase: USECASE } },
    response: { 200: jsonAnswer('the weights', ['usecase', 'weights']), ...ERRORS },
  },
  setRollout: {
    summary: "Set a use case's A/B rollout weights; the feedback writer applies them from its next batch",
    params: { type: 'object', required: ['usecase'], properties: { usecase: USECASE } },
    body: {
      type: 'object', required: ['weights'],
      properties: { weights: { type: 'object', minProperties: 1, propertyNames: { pattern: '^[A-Z]$' }, additionalProperties: { type: 'number', minimum: 0 }, description: 'variant → weight, e.g. {"A": 90, "B": 10}; promote B = {"A": 0, "B": 100}' } },
    },
    response: { 200: jsonAnswer('stored; the weights before and after', ['usecase', 'before', 'after']), ...ERRORS },
  },
  createRun: {
    summary: 'Run a function of a use case (params checked against its declaration first); with ?wait= the result when it ends in time',
    querystring: { type: 'object', properties: { wait: { type: 'string', description: 'a duration (500ms, 30s, 2m); empty = DIAMOND_RUNS_DEFAULT_WAIT; absent = answer 202 at once' } } },
    body: {
      type: 'object', required: ['function'],
      properties: {
        function: { type: 'string', pattern: RUN_FUNCTION_PATTERN, description: '`usecase.function`, e.g. customer_insights.customer_summary' },
        params: { type: 'object', description: "name → value, as the function's usecase.yaml declares (timestamps: ISO-8601 or a duration back such as 7d; durations: 30s, 5m, …)" },
      },
    },
    response: { 200: jsonAnswer('the run ended within the wait: { run } with its result or error', ['run']), 202: jsonAnswer('queued or running: poll GET /v1/runs/<id> or follow its events', ['run']), ...ERRORS },
  },
  listRuns: {
    summary: "A function's latest runs, newest first",
    querystring: { type: 'object', required: ['function'], properties: { function: { type: 'string', pattern: RUN_FUNCTION_PATTERN }, limit: { type: 'string', pattern: '^\\d*$' } } },
    response: { 200: jsonAnswer('{ runs }', ['runs']), ...ERRORS },
  },
  getRun: { summary: 'A run: state, timings, result or error (with the user\'s file and line)', params: RUN_PARAMS, response: { 200: jsonAnswer('{ run }', ['run']), ...ERRORS } },
  cancelRun: { summary: 'Cancel a run: a queued one is removed, a running one cancelled in its session', params: RUN_PARAMS, response: { 200: jsonAnswer('{ run } (a running run ends cancelled shortly after)', ['run']), ...ERRORS } },
  runEvents: {
    summary: "A run's lifecycle as server-sent events (event: run): replayed, then followed until it ends",
    params: RUN_PARAMS,
    response: { 200: textAnswer('text/event-stream', 'server-sent events: event run, data { event, at, run } with the run record on its end'), ...ERRORS },
  },
  sql: {
    summary: 'A read-only SQL query over the history on a warm function session (views records and feedback: the cached recent days; records_all, feedback_all: everything)',
    body: {
      type: 'object', required: ['sql'],
      properties: {
        sql: { type: 'string', minLength: 1, maxLength: 100_000, description: 'one SELECT, WITH … SELECT, VALUES or TABLE; commands (SET, CACHE, CREATE, DROP, INSERT, SHOW, EXPLAIN …) are refused' },
        limit: { type: 'integer', minimum: 1, description: 'rows to answer at most (capped by DIAMOND_SQL_MAX_ROWS)' },
      },
    },
    response: { 200: jsonAnswer('{ query: { id, columns, rows, truncated, timings, cache } }', ['query']), ...ERRORS },
  },
  dashboard: { summary: 'The dashboard (HTML); it reads the token from the URL fragment (#token=…) and sends it for data', security: [], response: { 200: textAnswer('text/html', 'the page') } },
  dashboardAsset: {
    summary: "The dashboard's script and style sheet",
    security: [],
    params: { type: 'object', required: ['file'], properties: { file: { type: 'string', enum: ['app.js', 'app.css'] } } },
    response: { 200: { description: 'app.js (text/javascript) or app.css (text/css)', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } }, ...ERRORS },
  },
};
