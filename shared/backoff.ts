/**
 * Exponential backoff with ±20 % jitter, capped: the one delay policy of the platform's own
 * retry loops (waiting for a dependency at start, restarting a platform process). Jitter
 * keeps processes that failed together from retrying in lockstep.
 */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Delay before attempt number `attempt` (1-based) of a retry. */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.max(0, Math.round(Math.min(policy.maxMs, base * (0.8 + 0.4 * random()))));
}
