/**
 * Delivers alerts to the configured webhooks: one JSON POST per alert transition and
 * target, each with a timeout, retried with exponential backoff a few times, then dropped
 * with a warning. `notify` returns at once (deliveries run beside the reconcile loop, never
 * in it); `close` waits a bounded time for deliveries in flight.
 *
 * A webhook URL often carries its secret (Slack's path, a `?token=`, `user:password@`, sent
 * as Basic authorization): logs name a target by its number and origin only, never its
 * path, query or credentials.
 *
 *   POST <webhook>  content-type: application/json     (the contract: shared/schemas/alert-webhook.schema.json)
 *   { "alert": "lag", "state": "firing", "severity": "warning", "job": "uc.x.A", "usecase": "x", "variant": "A",
 *     "value": 250000, "threshold": 100000, "unit": "records", "summary": "…", "at": "2026-…Z", "firedAt": "2026-…Z" }
 */
import { backoffDelayMs } from '../../shared/backoff.ts';
import type { Logger } from '../../shared/logger.ts';
import { buildAlertWebhook, type AlertWebhook } from '../../shared/messages.ts';
import type { AlertTransition } from './alert-rules.ts';

/** What each webhook receives: shared/schemas/alert-webhook.schema.json, typed in shared/messages.ts. */
export type WebhookPayload = AlertWebhook;

/** The body for a transition, checked against its contract (a MessageContractError is a bug here, never the receiver's). */
export function webhookPayload(transition: AlertTransition): WebhookPayload {
  return buildAlertWebhook({
    alert: transition.rule, state: transition.kind, severity: transition.severity, job: transition.job, usecase: transition.usecase, variant: transition.variant,
    value: transition.value, threshold: transition.threshold, unit: transition.unit, summary: transition.summary,
    at: new Date(transition.at).toISOString(), firedAt: transition.firedAt === null ? null : new Date(transition.firedAt).toISOString(),
  });
}

/** What a log line may say about a webhook: its origin, never its path, query or credentials. */
export function safeTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

export interface WebhookOptions {
  readonly timeoutMs: number;
  readonly retries: number;
  /** First retry delay; doubles per retry (with jitter), capped at `backoffMaxMs`. */
  readonly backoffMs?: number;
  readonly backoffMaxMs?: number;
}

/** Deliveries waiting or in flight beyond this are dropped (a dead target must not grow memory). */
const MAX_IN_FLIGHT = 1000;

export class WebhookNotifier {
  readonly #inFlight = new Set<Promise<void>>();
  readonly #closing = new AbortController();

  constructor(private readonly urls: readonly string[], private readonly options: WebhookOptions, private readonly log: Logger) {}

  get targets(): number {
    return this.urls.length;
  }

  /** Starts delivering to every target; returns at once. */
  notify(transition: AlertTransition): void {
    if (this.#closing.signal.aborted) return;
    const body = JSON.stringify(webhookPayload(transition));
    for (const [index, url] of this.urls.entries()) {
      if (this.#inFlight.size >= MAX_IN_FLIGHT) {
        this.log.warn({ webhook: index + 1, target: safeTarget(url), alert: transition.rule, job: transition.job }, 'too many webhook deliveries pending; dropped this one');
        continue;
      }
      const delivery = this.#deliver(index, url, body, transition).finally(() => this.#inFlight.delete(delivery));
      this.#inFlight.add(delivery);
    }
  }

  /** Waits up to `graceMs` for deliveries in flight, then abandons the rest. */
  async close(graceMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
      timer.unref();
    });
    await Promise.race([Promise.allSettled([...this.#inFlight]), bound]);
    clearTimeout(timer);
    this.#closing.abort();
  }

  async #deliver(index: number, url: string, body: string, transition: AlertTransition): Promise<void> {
    const where = { webhook: index + 1, target: safeTarget(url), alert: transition.rule, state: transition.kind, job: transition.job };
    const attempts = this.options.retries + 1;
    const target = withoutCredentials(url);
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      let problem: string;
      try {
        const response = await fetch(target.url, {
          method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'diamond-orchestrator', ...target.headers }, body,
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
        await response.body?.cancel().catch(() => undefined);
        if (response.ok) {
          this.log.debug({ ...where, attempt, status: response.status }, 'alert delivered to webhook');
          return;
        }
        problem = `answered ${response.status}`;
      } catch (error) {
        // fetch's errors may quote the URL; only their kind is logged.
        problem = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : failureKind(error);
      }
      if (this.#closing.signal.aborted) return;
      if (attempt === attempts) {
        this.log.warn({ ...where, attempts, problem }, 'could not deliver the alert to the webhook; dropped');
        return;
      }
      const delay = backoffDelayMs(attempt, { initialMs: this.options.backoffMs ?? 1000, maxMs: this.options.backoffMaxMs ?? 30_000 });
      this.log.info({ ...where, attempt, problem, retryInMs: delay }, 'webhook delivery failed; retrying');
      await this.#sleep(delay);
      if (this.#closing.signal.aborted) return;
    }
  }

  /** Resolves after `ms`, or at once when the notifier closes. */
  #sleep(ms: number): Promise<void> {
    const signal = this.#closing.signal;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }
}

/** fetch refuses a URL with credentials: `https://user:pw@host/…` is sent as Basic authorization instead. */
function withoutCredentials(url: string): { url: string; headers: Record<string, string> } {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { url, headers: {} };
  const basic = Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64');
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), headers: { authorization: `Basic ${basic}` } };
}

/** The error's class and code (ECONNREFUSED…), without its message (which may quote the URL). */
function failureKind(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  const code = cause && typeof cause.code === 'string' ? cause.code : null;
  if (code) return `request failed (${code})`;
  return `request failed (${error instanceof Error ? error.name : typeof error})`;
}
