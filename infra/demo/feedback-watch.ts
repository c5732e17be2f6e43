/**
 * The customers' side: each demo customer's feedback read through the feedback API with its
 * own key (`GET /v1/feedback`, paged with the cursor), kept to this run's rows (a row is
 * this run's when it is about a record id with the run's tag). `waitForFeedback` polls until
 * every customer sees the rows the model expects, or the time is up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DiamondError, ServiceUnavailableError } from '../../shared/errors.ts';
import type { Feedback } from '../../shared/schemas.ts';
import type { ExpectedRow } from '../dataset/oracle.ts';

export async function fetchFeedback(feedbackUrl: string, key: string, since: number): Promise<Feedback[]> {
  const items: Feedback[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ since: String(since), limit: '1000', ...(cursor ? { cursor } : {}) });
    let response: Response;
    try {
      response = await fetch(`${feedbackUrl}/v1/feedback?${query.toString()}`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(15_000) });
    } catch (cause) {
      throw new ServiceUnavailableError('feedback API', feedbackUrl, { cause, hint: 'run `npx diamond up` (or `npx diamond serve downstream`) and the demo again' });
    }
    const text = await response.text();
    if (response.status === 503) return items; // Cassandra busy: the next poll asks again
    if (!response.ok) throw new DiamondError(`the feedback API answered ${response.status}: ${text.slice(0, 300)}`, { code: 'DIAMOND_DEMO_FEEDBACK_FAILED', hint: 'see .diamond/logs/platform-downstream.log' });
    const page = JSON.parse(text) as { items: Feedback[]; next_cursor: string | null };
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export const ofRun = (tag: string) => (item: Pick<Feedback, 'record_ids'>): boolean => item.record_ids.some((id) => id.startsWith(`${tag}-`));

export interface FeedbackCounts {
  /** Per use case: rows arrived / expected. */
  readonly arrived: Readonly<Record<string, number>>;
  readonly expected: Readonly<Record<string, number>>;
}

export interface FeedbackWait extends FeedbackCounts {
  readonly complete: boolean;
  readonly elapsedMs: number;
  /** This run's rows per customer, oldest first. */
  readonly byCustomer: ReadonlyMap<string, readonly Feedback[]>;
  /** Every row since `since` per customer (earlier runs' too), as last read. */
  readonly allByCustomer: ReadonlyMap<string, readonly Feedback[]>;
}

export interface WaitOptions {
  readonly feedbackUrl: string;
  readonly customerKeys: Readonly<Record<string, string>>;
  readonly tag: string;
  readonly since: number;
  readonly expected: readonly ExpectedRow[];
  readonly timeoutMs: number;
  readonly onProgress?: (counts: FeedbackCounts, elapsedMs: number) => void;
}

const countBy = (rows: readonly { usecase: string }[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.usecase] = (counts[row.usecase] ?? 0) + 1;
  return counts;
};

export async function waitForFeedback(options: WaitOptions): Promise<FeedbackWait> {
  const started = performance.now();
  const expected = countBy(options.expected);
  const expectedByCustomer = new Map<string, number>();
  for (const row of options.expected) expectedByCustomer.set(row.customer_id, (expectedByCustomer.get(row.customer_id) ?? 0) + 1);
  const byCustomer = new Map<string, readonly Feedback[]>();
  const allByCustomer = new Map<string, readonly Feedback[]>();
  for (;;) {
    for (const [customer, key] of Object.entries(options.customerKeys)) {
      // A customer that already shows all its rows is not asked again.
      if ((byCustomer.get(customer)?.length ?? -1) >= (expectedByCustomer.get(customer) ?? 0) && byCustomer.has(customer)) continue;
      const all = await fetchFeedback(options.feedbackUrl, key, options.since);
      allByCustomer.set(customer, all);
      byCustomer.set(customer, all.filter(ofRun(options.tag)));
    }
    const arrived = countBy([...byCustomer.values()].flat());
    const elapsedMs = performance.now() - started;
    options.onProgress?.({ arrived, expected }, elapsedMs);
    const complete = Object.entries(expected).every(([usecase, count]) => (arrived[usecase] ?? 0) >= count);
    if (complete || elapsedMs > options.timeoutMs) return { complete, elapsedMs, arrived, expected, byCustomer, allByCustomer };
    await sleep(2000);
  }
}
