/**
 * The client of downstream's feedback API for operators (the control API relaying the A/B
 * report, `diamond ab`): DIAMOND_FEEDBACK_URL, with an operator token of the control API's
 * token store.
 */
import type { DiamondConfig } from '../config.ts';
import { ApiClient } from './api-client.ts';

export function feedbackApiClient(config: Pick<DiamondConfig, 'http'>, token: string): ApiClient {
  return new ApiClient({
    name: 'feedback API (downstream)', baseUrl: config.http.feedbackUrl, token,
    unreachableHint: 'the A/B report is served by downstream: start it with `npx diamond serve downstream` (or `npx diamond up`), or point DIAMOND_FEEDBACK_URL at it',
    timeout: { ms: 60_000, code: 'DIAMOND_SERVICE_UNAVAILABLE', hint: 'downstream or Cassandra is overloaded; retry later' },
  });
}

/** The path of the A/B report of `usecase` (days back from today, optional variants). */
export function abReportPath(usecase: string, days: number, variants?: readonly string[]): string {
  const search = new URLSearchParams({ days: String(days), ...(variants?.length ? { variants: variants.join(',') } : {}) });
  return `/v1/ab/${encodeURIComponent(usecase)}?${search.toString()}`;
}
