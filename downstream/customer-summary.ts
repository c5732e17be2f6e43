/**
 * A customer's summary, computed on demand: GET /v1/summary on the feedback API runs the use
 * case function customer_insights.customer_summary on the orchestrator's control API
 * (`POST /v1/runs?wait=`, docs/RUNS.md) with an operator token of role runner, over HTTP —
 * downstream never imports infra/.
 *
 *   const summaries = new CustomerSummaries(config.summary, logger);
 *   const answer = await summaries.summarize('acme', '7d');   // { summary, run: { id, state, timings } }
 *
 * The customer id is always the caller's (the feedback API takes it from the API key); the
 * customer chooses only `since`, which the control API checks as the function's timestamp.
 * What reaches the customer is the run's result, or its error code and message — never the
 * runner token, the user code's file paths, or another run's details; the log keeps the rest.
 */
import { readFile } from 'node:fs/promises';
import type { SummarySettings } from '../shared/config.ts';
import { ApiError, DiamondError, ServiceUnavailableError } from '../shared/errors.ts';
import { ApiAnswerError, ApiClient } from '../shared/http/api-client.ts';
import type { Logger } from '../shared/logger.ts';

export const SUMMARY_FUNCTION = 'customer_insights.customer_summary';

/** The fields of the control API's run record that the answer reads. */
export interface SummaryRun {
  readonly id: string;
  readonly state: string;
  readonly result?: { readonly kind: string; readonly value?: unknown } | null;
  readonly error?: { readonly code: string; readonly message?: string } | null;
  readonly timings?: Readonly<Record<string, number>> | null;
}

export interface SummaryAnswer {
  /** The function's value (a dict for customer_summary); a rows result as it came. */
  readonly summary: unknown;
  readonly run: { readonly id: string; readonly state: 'finished'; readonly timings: Readonly<Record<string, number>> | null };
}

const MAX_MESSAGE = 500;
const OPERATOR_HINT = 'the operator writes a control API token of role runner into the file DIAMOND_SUMMARY_TOKEN_FILE names (`npx diamond token add --role runner --name feedback-summary`); `npx diamond up` does it';

const notConfigured = (message: string, hint = OPERATOR_HINT): DiamondError => new DiamondError(message, { code: 'DIAMOND_SUMMARY_NOT_CONFIGURED', hint });

/**
 * What the customer gets for an ended run: 200's body when it finished; a failed or
 * cancelled run is 502 with its error code and message (a platform failure's message stays in
 * the log: it may describe the shared session, not this customer's run); timed out is 504.
 */
export function summaryAnswer(run: SummaryRun): SummaryAnswer {
  if (run.state === 'finished') {
    const result = run.result;
    return { summary: result?.kind === 'value' ? result.value : result ?? null, run: { id: run.id, state: 'finished', timings: run.timings ?? null } };
  }
  const code = run.error?.code ?? run.state;
  if (run.state === 'timed-out') {
    return timeout(`the summary did not finish in time (${code}); it was stopped`, run.id);
  }
  const told = code === 'platform' || !run.error?.message ? '' : `: ${run.error.message.slice(0, MAX_MESSAGE)}`;
  throw new DiamondError(`the summary run ${run.state === 'cancelled' ? 'was cancelled' : 'failed'} (${code})${told}`, {
    code: 'DIAMOND_SUMMARY_FAILED', hint: `retry later; if it keeps failing, give the operator run id ${run.id}`,
  });
}

function timeout(message: string, runId: string): never {
  throw new DiamondError(message, { code: 'DIAMOND_SUMMARY_TIMEOUT', hint: `retry in a moment: a warm session answers in seconds (run id ${runId})` });
}

export class CustomerSummaries {
  constructor(private readonly settings: SummarySettings, private readonly logger: Logger) {}

  /** Runs the summary of `customer` since `since` (the function's default when absent) and waits for it. */
  async summarize(customer: string, since: string | undefined): Promise<SummaryAnswer> {
    const client = await this.client();
    const params = { customer_id: customer, ...(since === undefined ? {} : { since }) };
    const waitS = Math.max(1, Math.ceil(this.settings.waitMs / 1000));
    const started = performance.now();
    let run: SummaryRun;
    try {
      ({ run } = await client.json<{ run: SummaryRun }>('POST', `/v1/runs?wait=${waitS}s`, { function: SUMMARY_FUNCTION, params }));
    } catch (error) {
      throw this.refusal(error);
    }
    const ms = Math.round(performance.now() - started);
    this.logger.info({ customer, run: run.id, state: run.state, error: run.error ?? undefined, ms }, 'summary run');
    if (run.state === 'queued' || run.state === 'running') {
      // Nobody will read its result: free the session for the next caller.
      client.json('DELETE', `/v1/runs/${encodeURIComponent(run.id)}`).catch((error: unknown) => this.logger.warn({ run: run.id, error: String(error) }, 'cancelling a summary run past its wait failed'));
      timeout(`the summary did not finish within ${waitS} s; it was stopped`, run.id);
    }
    return summaryAnswer(run);
  }

  /** A client with the runner token as the file holds it now (a rotated token needs no restart). */
  private async client(): Promise<ApiClient> {
    let token: string;
    try {
      token = (await readFile(this.settings.tokenFile, 'utf8')).trim();
    } catch (error) {
      this.logger.warn({ file: this.settings.tokenFile, error: (error as NodeJS.ErrnoException).code }, 'GET /v1/summary: no runner token file');
      throw notConfigured('summaries are not configured on this feedback API: it has no runner token for the control API');
    }
    if (!token) throw notConfigured('summaries are not configured on this feedback API: its runner token file is empty');
    return new ApiClient({
      name: 'orchestrator control API', baseUrl: this.settings.controlUrl, token,
      unreachableHint: 'summaries are computed by the orchestrator, which does not answer; retry later (operators: `npx diamond up`, or set DIAMOND_CONTROL_URL)',
      timeout: { ms: this.settings.waitMs + 15_000, code: 'DIAMOND_SUMMARY_TIMEOUT', hint: 'retry in a moment' },
    });
  }

  /** The control API's refusals as the customer should see them. */
  private refusal(error: unknown): unknown {
    // Unreachable and too slow are the client's own DiamondErrors already (503, 504).
    if (!(error instanceof ApiAnswerError)) return error instanceof DiamondError ? error : new ServiceUnavailableError('orchestrator control API', this.settings.controlUrl, { cause: error });
    this.logger.warn({ status: error.answered, code: error.code, error: error.message }, 'the control API refused a summary run');
    switch (error.answered) {
      case 400:
        // The one parameter the customer chooses; any other refusal is the platform's to fix.
        if (error.message.startsWith('params.since')) return new ApiError('DIAMOND_BAD_REQUEST', error.message.replace(/^params\.since/, 'since'), error.hint ?? 'since: an ISO-8601 time with a zone, a date, or a duration back such as 7d');
        return notConfigured(`the control API refused the summary run: ${error.message}`, 'operators: see the feedback API log (DIAMOND_SUMMARY_WAIT must be at most the control API\'s DIAMOND_RUNS_MAX_WAIT)');
      case 401:
      case 403:
        return notConfigured(`the control API refused this feedback API's runner token (${error.answered})`);
      case 404:
        return notConfigured(`the control API has no function ${SUMMARY_FUNCTION}`, 'operators: the customer_insights use case folder must lie under the orchestrator\'s DIAMOND_USECASE_ROOTS');
      default:
        return error.status === 503 ? error : new DiamondError(`the control API failed to run the summary (${error.answered})`, { code: 'DIAMOND_SUMMARY_FAILED', hint: 'retry later' });
    }
  }
}
