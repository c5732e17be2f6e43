/**
 * The one error body of every Diamond API, `{ error, code, hint }`, from any thrown value:
 * a DiamondError answers its catalog status; fastify's own errors (validation, body limit,
 * malformed JSON, media type) are given Diamond codes; anything else is a 500.
 */
import { ApiError, DiamondError, type ErrorCode } from '../errors.ts';
import { errorSpec } from '../error-catalog.ts';

export interface ErrorBody {
  readonly error: string;
  readonly code: ErrorCode;
  readonly hint: string;
}

/** The body's JSON Schema, for the OpenAPI document. */
export const ERROR_BODY_SCHEMA = {
  type: 'object',
  required: ['error', 'code', 'hint'],
  properties: {
    error: { type: 'string', description: 'what happened, for people' },
    code: { type: 'string', description: 'stable code, listed in docs/ERRORS.md' },
    hint: { type: 'string', description: 'what to do next' },
  },
} as const;

export interface ErrorAnswer {
  readonly status: number;
  readonly body: ErrorBody;
  readonly headers: Readonly<Record<string, string>>;
  /** A 500: a bug worth a stack in the log. */
  readonly unexpected: boolean;
}

/** What the server knows that the error does not: the limit it enforced. */
export interface ErrorContext {
  readonly bodyLimit: number;
  readonly bodyLimitHint: string;
}

interface FastifyErrorShape {
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly validation?: unknown;
}

function fromFastify(error: Error & FastifyErrorShape, context: ErrorContext): ApiError | null {
  if (error.validation !== undefined) return new ApiError('DIAMOND_BAD_REQUEST', error.message, 'the request schema is at GET /openapi.json');
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('DIAMOND_BODY_TOO_LARGE', `the body is larger than ${context.bodyLimit} bytes; at most ${context.bodyLimit} are accepted`, context.bodyLimitHint, { connection: 'close' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('DIAMOND_BAD_REQUEST', 'the body is not JSON', 'send a JSON object with content-type application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('DIAMOND_BAD_REQUEST', 'the body is empty', 'send a JSON object with content-type application/json');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('DIAMOND_UNSUPPORTED_MEDIA_TYPE', error.message, 'send content-type application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('DIAMOND_BAD_REQUEST', 'the content-length does not match the body', 'send the body as declared');
    default:
      // Other 4xx of fastify's (e.g. a malformed URL): a bad request, in our shape.
      return typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? new ApiError('DIAMOND_BAD_REQUEST', error.message, 'check the request against GET /openapi.json') : null;
  }
}

export function errorAnswer(error: unknown, context: ErrorContext): ErrorAnswer {
  const known = error instanceof DiamondError ? error : error instanceof Error ? fromFastify(error, context) : null;
  if (!known) {
    return { status: 500, body: { error: 'internal error', code: 'DIAMOND_INTERNAL', hint: errorSpec('DIAMOND_INTERNAL').doc }, headers: {}, unexpected: true };
  }
  const headers: Record<string, string> = { ...(known instanceof ApiError ? known.headers : {}) };
  // Every outage (and a retriable gateway timeout) tells the client when to come back, unless the error said already.
  if ((known.status === 503 || (known.status === 504 && known.retriable)) && !Object.keys(headers).some((name) => name.toLowerCase() === 'retry-after')) headers['retry-after'] = known.code === 'DIAMOND_BACKPRESSURE' ? '1' : '5';
  return { status: known.status, body: { error: known.message, code: known.code, hint: known.hint ?? errorSpec(known.code).doc }, headers, unexpected: known.status === 500 };
}
