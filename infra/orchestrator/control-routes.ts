/**
 * The control API's pure parts: the route table (method, path pattern, required role),
 * the authorization decision, and request-body parsing (after the routes' JSON Schemas
 * checked the shape, these narrow the types and name the fix). No I/O here, so all of it is
 * unit-tested beside this file; `control-api.ts` serves it through the shared HTTP kit.
 */
import { ApiError } from '../../shared/errors.ts';
import { matchRoute as matchRoutes, type RouteMatch as SharedRouteMatch } from '../../shared/http/route-match.ts';
import { bearerChallenge } from '../../shared/http/bearer.ts';
import { isRole, roleAllows, type Role, type TokenGrant } from '../../shared/operator-tokens.ts';

export type RouteName = 'livez' | 'readyz' | 'healthz' | 'metrics' | 'status' | 'deploy' | 'undeploy' | 'logs' | 'events' | 'ab' | 'createToken' | 'replay' | 'backfill'
  | 'whoami' | 'rollout' | 'setRollout' | 'dashboard' | 'dashboardAsset' | 'createRun' | 'getRun' | 'cancelRun' | 'listRuns' | 'runEvents' | 'sql';

export interface RouteSpec {
  readonly name: RouteName;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Segments; `:name` captures one path segment. */
  readonly path: string;
  /** null = no token needed. */
  readonly role: Role | null;
}

export const ROUTES: readonly RouteSpec[] = [
  { name: 'livez', method: 'GET', path: '/livez', role: null },
  { name: 'readyz', method: 'GET', path: '/readyz', role: null },
  { name: 'healthz', method: 'GET', path: '/healthz', role: null },
  { name: 'metrics', method: 'GET', path: '/metrics', role: 'viewer' },
  { name: 'status', method: 'GET', path: '/v1/status', role: 'viewer' },
  { name: 'deploy', method: 'POST', path: '/v1/deployments', role: 'deployer' },
  { name: 'undeploy', method: 'DELETE', path: '/v1/deployments/:usecase/:variant', role: 'deployer' },
  { name: 'logs', method: 'GET', path: '/v1/jobs/:usecase/:variant/logs', role: 'viewer' },
  { name: 'events', method: 'GET', path: '/v1/events', role: 'viewer' },
  { name: 'ab', method: 'GET', path: '/v1/ab/:usecase', role: 'viewer' },
  { name: 'createToken', method: 'POST', path: '/v1/tokens', role: 'admin' },
  { name: 'replay', method: 'POST', path: '/v1/replay', role: 'deployer' },
  { name: 'backfill', method: 'POST', path: '/v1/backfill', role: 'deployer' },
  { name: 'whoami', method: 'GET', path: '/v1/whoami', role: 'viewer' },
  { name: 'rollout', method: 'GET', path: '/v1/rollouts/:usecase', role: 'viewer' },
  { name: 'setRollout', method: 'PUT', path: '/v1/rollouts/:usecase', role: 'deployer' },
  { name: 'createRun', method: 'POST', path: '/v1/runs', role: 'runner' },
  { name: 'listRuns', method: 'GET', path: '/v1/runs', role: 'viewer' },
  { name: 'getRun', method: 'GET', path: '/v1/runs/:id', role: 'viewer' },
  { name: 'cancelRun', method: 'DELETE', path: '/v1/runs/:id', role: 'runner' },
  { name: 'runEvents', method: 'GET', path: '/v1/runs/:id/events', role: 'viewer' },
  { name: 'sql', method: 'POST', path: '/v1/sql', role: 'runner' },
  // The dashboard's page and its two files carry no data: no token (the page sends one for data).
  { name: 'dashboard', method: 'GET', path: '/ui', role: null },
  { name: 'dashboardAsset', method: 'GET', path: '/ui/:file', role: null },
];

export type RouteMatch = SharedRouteMatch<RouteSpec>;

/** The route of a request, or why there is none (405 with the allowed methods, 404). */
export function matchRoute(method: string, pathname: string, routes: readonly RouteSpec[] = ROUTES): RouteMatch {
  return matchRoutes(method, pathname, routes);
}

export type AuthDecision = { readonly ok: true } | { readonly ok: false; readonly error: ApiError };

/**
 * No token or an unknown one → 401 (with the Bearer challenge); a known token whose role is
 * below the route's → 403 naming the role needed.
 */
export function authorize(required: Role | null, presented: string | null, grant: TokenGrant | null): AuthDecision {
  if (required === null) return { ok: true };
  if (!presented) {
    return { ok: false, error: new ApiError('DIAMOND_UNAUTHORIZED', 'this call needs a bearer token: Authorization: Bearer <token>', 'create one with `npx diamond token add --role viewer|runner|deployer|admin`', bearerChallenge('diamond', false)) };
  }
  if (!grant) {
    return { ok: false, error: new ApiError('DIAMOND_UNAUTHORIZED', 'this token is not valid (unknown or revoked)', 'create a new one with `npx diamond token add --role <role>`', bearerChallenge('diamond', true)) };
  }
  if (!roleAllows(grant.role, required)) {
    return { ok: false, error: new ApiError('DIAMOND_FORBIDDEN', `this call needs the ${required} role; token "${grant.name}" has the ${grant.role} role`, `ask an admin for a ${required} token (\`npx diamond token add --role ${required}\`)`) };
  }
  return { ok: true };
}

/** Names the SDK accepts (usecases/sdk/diamond_sdk/_runtime/manifest.py). */
const USECASE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const VARIANT_NAME = /^[A-Z]$/;

const badField = (field: string, problem: string, hint: string): ApiError => new ApiError('DIAMOND_BAD_REQUEST', `${field} ${problem}`, hint);

export function checkUsecaseName(value: unknown, field = 'usecase'): string {
  if (typeof value !== 'string' || !USECASE_NAME.test(value)) throw badField(field, 'must be a use case name', 'lower_snake_case letters, digits and _, e.g. data_quality');
  return value;
}

export function checkVariantName(value: unknown, field = 'variant'): string {
  if (typeof value !== 'string' || !VARIANT_NAME.test(value)) throw badField(field, 'must be a variant name', 'one capital letter: A, B, …');
  return value;
}

function optionalString(body: Record<string, unknown>, field: string, hint: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw badField(field, 'must be a non-empty string', hint);
  return value;
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badField('body', 'must be a JSON object', 'send e.g. {"usecase": "data_quality"}');
  return value as Record<string, unknown>;
}

export interface DeployBody {
  readonly usecase: string;
  readonly variant: string;
  /** A folder on the orchestrator's machine; default usecases/<usecase>. */
  readonly dir?: string;
  readonly startingOffsets?: 'earliest' | 'latest';
  readonly trigger?: string;
  /** Start (or restart) at the input's offsets of this time: ISO-8601 or a duration back. */
  readonly from?: string;
}

export function parseDeployBody(value: unknown): DeployBody {
  const body = asObject(value);
  const usecase = checkUsecaseName(body['usecase']);
  const variant = body['variant'] === undefined ? 'A' : checkVariantName(body['variant']);
  const dir = optionalString(body, 'dir', 'an absolute folder on the orchestrator\'s machine, or leave it out for usecases/<usecase>');
  const startingOffsets = optionalString(body, 'startingOffsets', 'earliest or latest');
  if (startingOffsets !== undefined && startingOffsets !== 'earliest' && startingOffsets !== 'latest') throw badField('startingOffsets', `is "${startingOffsets}"`, 'earliest or latest');
  const trigger = optionalString(body, 'trigger', 'a duration such as 500ms or 10 seconds');
  const from = optionalString(body, 'from', 'an ISO-8601 time or a duration back such as 7d');
  return { usecase, variant, ...(dir ? { dir } : {}), ...(startingOffsets ? { startingOffsets } : {}), ...(trigger ? { trigger } : {}), ...(from ? { from } : {}) };
}

export interface TokenBody {
  readonly role: Role;
  readonly name?: string;
}

export function parseTokenBody(value: unknown): TokenBody {
  const body = asObject(value);
  const role = body['role'];
  if (typeof role !== 'string' || !isRole(role)) throw badField('role', 'must be viewer, runner, deployer or admin', 'send e.g. {"role": "deployer", "name": "ci"}');
  const name = optionalString(body, 'name', 'a label for the token, e.g. ci or alice');
  return { role, ...(name ? { name } : {}) };
}

/** `{ "weights": { "A": 90, "B": 10 } }` → the weights (variant names as deployments name them). */
export function parseRolloutBody(value: unknown): Record<string, number> {
  const body = asObject(value);
  const weights = body['weights'];
  const hint = 'send e.g. {"weights": {"A": 90, "B": 10}} (non-negative numbers, at least one above 0)';
  if (typeof weights !== 'object' || weights === null || Array.isArray(weights)) throw badField('weights', 'must be an object of variant → weight', hint);
  const entries = Object.entries(weights as Record<string, unknown>);
  if (entries.length === 0) throw badField('weights', 'names no variant', hint);
  const result: Record<string, number> = {};
  for (const [variant, weight] of entries) {
    checkVariantName(variant, 'weights');
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) throw badField(`weights.${variant}`, 'must be a non-negative number', hint);
    result[variant] = weight;
  }
  if (!Object.values(result).some((weight) => weight > 0)) throw badField('weights', 'are all 0', hint);
  return result;
}

export interface EventsQuery {
  /** Replay events at or after this time (epoch ms). */
  readonly since?: number;
  /** Replay this many of the latest events. */
  readonly last?: number;
  readonly follow: boolean;
}

export const MAX_REPLAY_EVENTS = 10_000;
/** What `/v1/events` replays when neither `since` nor `last` is given. */
export const DEFAULT_LAST_EVENTS = 20;

export function parseEventsQuery(params: URLSearchParams): EventsQuery {
  const follow = !['0', 'false', 'no'].includes(params.get('follow') ?? '1');
  const sinceText = params.get('since');
  const lastText = params.get('last');
  if (sinceText && lastText) throw badField('since', 'and last cannot both be given', 'use one of them');
  if (sinceText) {
    const since = /^\d+$/.test(sinceText) ? Number(sinceText) : Date.parse(sinceText);
    if (!Number.isFinite(since)) throw badField('since', `is "${sinceText}"`, 'an ISO-8601 time such as 2026-11-01T10:00:00Z, or epoch milliseconds');
    return { since, follow };
  }
  return { last: parseCount(lastText, 'last', DEFAULT_LAST_EVENTS, MAX_REPLAY_EVENTS), follow };
}

/** An integer query parameter from 0 to `max`. */
export function parseCount(text: string | null, field: string, fallback: number, max: number): number {
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > max) throw badField(field, `is "${text}"`, `an integer from 0 to ${max}`);
  return value;
}

/** `?wait=30s` (or `wait` alone: `fallback`) → ms, at most `maxMs`; absent → 0 (answer at once). */
export function parseWait(text: string | null, fallback: number, maxMs: number): number {
  if (text === null) return 0;
  if (text === '') return fallback;
  const match = /^(\d+)\s*(ms|s|m)?$/.exec(text.trim());
  if (!match) throw badField('wait', `is "${text}"`, 'a duration such as 500ms, 30s or 2m');
  const ms = Number(match[1]) * ({ ms: 1, s: 1000, m: 60_000 }[match[2] ?? 's'] ?? 1000);
  if (ms > maxMs) throw badField('wait', `is ${text}, longer than ${maxMs} ms`, `wait at most ${Math.floor(maxMs / 1000)}s (DIAMOND_RUNS_MAX_WAIT), or poll GET /v1/runs/<id>`);
  return ms;
}

export interface RunBody {
  readonly function: string;
  readonly params: unknown;
}

export function parseRunBody(value: unknown): RunBody {
  const body = asObject(value);
  const fn = body['function'];
  if (typeof fn !== 'string' || fn === '') throw badField('function', 'must be "usecase.function"', 'send e.g. {"function": "customer_insights.customer_summary", "params": {"customer_id": "acme"}}');
  return { function: fn, params: body['params'] };
}

export interface SqlBody {
  readonly sql: string;
  readonly limit: number | null;
}

export function parseSqlBody(value: unknown): SqlBody {
  const body = asObject(value);
  const sql = body['sql'];
  if (typeof sql !== 'string' || sql.trim() === '') throw badField('sql', 'must be a non-empty string', 'send e.g. {"sql": "SELECT customer_id, count(*) FROM records GROUP BY customer_id"}');
  const limit = body['limit'];
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) throw badField('limit', `is ${JSON.stringify(limit)}`, 'a whole number of rows, at least 1');
  return { sql, limit: typeof limit === 'number' ? limit : null };
}
