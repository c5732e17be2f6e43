/**
 * Checks the parameters of a POST /v1/runs against the function's declaration (from the
 * catalog, function-catalog.ts) before anything is queued, and types them as the function
 * session protocol wants them (docs/RUNS.md): timestamps as ISO-8601 UTC strings, durations as
 * milliseconds. Each refusal is a 400 naming the parameter and the expected type. Pure: unit-tested beside.
 */
import { ApiError } from '../../shared/errors.ts';

export const PARAM_TYPES = ['string', 'int', 'double', 'bool', 'timestamp', 'duration'] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

export interface ParamSpec {
  readonly type: ParamType;
  readonly required: boolean;
  /** As written in usecase.yaml (e.g. "30d" for a timestamp); null = none. */
  readonly default: unknown;
}

/** A parameter value as the session receives it. */
export type ParamValue = string | number | boolean | null;

const EXPECTED: Readonly<Record<ParamType, string>> = {
  string: 'a string',
  int: 'an integer',
  double: 'a number',
  bool: 'true or false',
  timestamp: 'an ISO-8601 time with a zone (2026-11-01T10:00:00Z) or a duration back from now (7d, 12h, 30m)',
  duration: 'a duration such as 500ms, 30s, 5m, 2h or 1d (or milliseconds)',
};

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;
/** A date, or a date and time with a zone (a time without one would depend on the server's zone). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/;

function bad(function_: string, name: string, type: ParamType | null, problem: string): ApiError {
  const hint = type ? `${name} is ${type}: give ${EXPECTED[type]}` : `see the function's params in its use case's usecase.yaml (functions:)`;
  return new ApiError('DIAMOND_BAD_REQUEST', `params.${name} ${problem} (function ${function_})`, hint);
}

/** '30s' → 30000; a bare non-negative number is milliseconds; null when it is not a duration. */
export function durationMs(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : null;
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const match = DURATION.exec(text);
  return match ? Math.round(Number(match[1]) * UNIT_MS[match[2]!]!) : null;
}

/** An ISO time, or a duration back from `now`, as ISO-8601 UTC; null when it is neither. */
export function timestampIso(value: unknown, now: number): string | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  const back = durationMs(text);
  if (back !== null && !/^\d+$/.test(text)) return new Date(now - back).toISOString();
  if (!ISO_TIME.test(text)) return null;
  const ms = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

function typed(function_: string, name: string, spec: ParamSpec, value: unknown, now: number): ParamValue {
  const wrong = (): ApiError => bad(function_, name, spec.type, `is ${JSON.stringify(value)}, not ${spec.type}`);
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') throw wrong();
      return value;
    case 'int': {
      const number = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof number !== 'number' || !Number.isSafeInteger(number)) throw wrong();
      return number;
    }
    case 'double': {
      const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof number !== 'number' || !Number.isFinite(number)) throw wrong();
      return number;
    }
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      throw wrong();
    case 'timestamp': {
      const iso = timestampIso(value, now);
      if (iso === null) throw wrong();
      return iso;
    }
    case 'duration': {
      const ms = durationMs(value);
      if (ms === null) throw wrong();
      return ms;
    }
  }
}

/**
 * The params to send to the session: every declared one (given, else its default, else null),
 * typed. Throws DIAMOND_BAD_REQUEST (400) for an unknown, missing or mistyped parameter.
 * Strings are accepted for every type (the CLI's `--param k=v` sends strings).
 */
export function checkRunParams(function_: string, specs: Readonly<Record<string, ParamSpec>>, given: unknown, now: number = Date.now()): Record<string, ParamValue> {
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    throw new ApiError('DIAMOND_BAD_REQUEST', 'params must be a JSON object of name → value', 'send e.g. {"function": "customer_insights.customer_summary", "params": {"customer_id": "acme"}}');
  }
  const values = (given ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(values)) {
    if (!Object.hasOwn(specs, name)) {
      const known = Object.keys(specs);
      throw new ApiError('DIAMOND_BAD_REQUEST', `params.${name} is not a parameter of ${function_}`, known.length > 0 ? `its parameters: ${known.map((k) => `${k} (${specs[k]!.type})`).join(', ')}` : `${function_} takes no parameters`);
    }
  }
  const out: Record<string, ParamValue> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const value = values[name];
    if (value === undefined || value === null) {
      if (spec.required) throw bad(function_, name, spec.type, 'is missing');
      out[name] = spec.default === null || spec.default === undefined ? null : typed(function_, name, spec, spec.default, now);
      continue;
    }
    out[name] = typed(function_, name, spec, value, now);
  }
  return out;
}
