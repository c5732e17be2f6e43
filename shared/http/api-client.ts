/**
 * A client of Diamond's own HTTP APIs (control, feedback): bearer token, JSON in and out,
 * streaming GETs. Every failure becomes a DiamondError that says what to do: the API is not
 * reachable, it did not answer in time, or the server's own `{ error, code, hint }`.
 *
 *   const client = new ApiClient({ name: 'feedback API', baseUrl, token, unreachableHint, timeout });
 *   const report = await client.json<AbComparison>('GET', '/v1/ab/data_quality?days=1');
 */
import { DiamondError, ServiceUnavailableError, type ErrorCode } from '../errors.ts';
import { isErrorCode } from '../error-catalog.ts';
import type { ErrorBody } from './error-body.ts';

/** A non-2xx answer of a Diamond API: the server's message, code and hint, and the status it answered. */
export class ApiAnswerError extends DiamondError {
  constructor(readonly answered: number, message: string, code: ErrorCode, hint: string | undefined) {
    super(message, { code, hint });
  }
}

export interface ApiClientOptions {
  /** Named in errors, e.g. 'orchestrator control API'. */
  readonly name: string;
  readonly baseUrl: string;
  readonly token: string;
  /** What to do when nothing listens at `baseUrl`. */
  readonly unreachableHint: string;
  readonly timeout: { readonly ms: number; readonly code: ErrorCode; readonly hint: string };
}

export class ApiClient {
  readonly baseUrl: string;
  readonly #options: ApiClientOptions;

  constructor(options: ApiClientOptions) {
    this.baseUrl = options.baseUrl;
    this.#options = options;
  }

  async json<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body, AbortSignal.timeout(this.#options.timeout.ms));
    return (await response.json()) as T;
  }

  /** A streaming GET (logs, events); `signal` ends it. */
  async stream(path: string, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const response = await this.send('GET', path, undefined, signal);
    if (!response.body) return (async function* () {})();
    return response.body;
  }

  private async send(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const { name, baseUrl, token, timeout } = this.#options;
    let response: Response;
    try {
      response = await fetch(new URL(path, baseUrl), {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal,
      });
    } catch (cause) {
      if (signal.aborted && (cause as Error).name === 'AbortError') throw cause;
      if ((cause as Error).name === 'TimeoutError') {
        throw new DiamondError(`the ${name} at ${baseUrl} did not answer in ${timeout.ms / 1000} s`, { code: timeout.code, hint: timeout.hint, cause });
      }
      throw new ServiceUnavailableError(name, baseUrl, { cause, hint: this.#options.unreachableHint });
    }
    if (response.ok) return response;
    throw await answerError(response, `${method} ${path}`);
  }
}

async function answerError(response: Response, call: string): Promise<ApiAnswerError> {
  const text = await response.text();
  let answer: Partial<ErrorBody> = {};
  try {
    answer = JSON.parse(text) as Partial<ErrorBody>;
  } catch {
    answer = { error: text.trim().slice(0, 500) || response.statusText };
  }
  // A code this build does not know (a newer server) still says how it failed.
  const code = answer.code && isErrorCode(answer.code) ? answer.code : response.status >= 500 ? 'DIAMOND_INTERNAL' : 'DIAMOND_BAD_REQUEST';
  return new ApiAnswerError(response.status, answer.error ?? `${call} answered ${response.status}`, code, answer.hint || undefined);
}
