/**
 * The Parquet history function sessions read (docs/RUNS.md, "History"), written by the test
 * itself in the archiver's layout — `<dir>/<view>/day=YYYY-MM-DD/*.parquet`, timestamps UTC —
 * with pyarrow (no Spark), and what customer_insights.customer_summary must answer over it,
 * computed here independently of the function.
 */
import { runPython } from './python.ts';

export interface HistoryRecord { record_id: string; customer_id: string; source: string; event_time: number; type: string; amount: number | null; currency: string | null; ingested_at: number }
export interface HistoryFeedback { feedback_id: string; customer_id: string; usecase: string; variant: string; version: string; kind: string; severity: string; score: number; message: string; record_ids: string[]; event_time: number; produced_at: number }

const DAY = 86_400_000;

export const historyRecord = (id: string, customer: string, daysAgo: number, amount: number | null, currency: string | null, now = Date.now()): HistoryRecord => {
  const at = now - daysAgo * DAY;
  return { record_id: id, customer_id: customer, source: 'test', event_time: at, type: 'purchase', amount, currency, ingested_at: at };
};

export const historyFeedback = (id: string, customer: string, daysAgo: number, kind: string, now = Date.now()): HistoryFeedback => {
  const at = now - daysAgo * DAY;
  return { feedback_id: id, customer_id: customer, usecase: 'data_quality', variant: 'A', version: 'v1', kind, severity: 'warning', score: 1, message: 'm', record_ids: [], event_time: at, produced_at: at };
};

const WRITE_HISTORY = `
import json, os, sys, datetime as dt
import pyarrow as pa, pyarrow.parquet as pq
body = json.load(sys.stdin)
ts = pa.timestamp("ms", tz="UTC")
types = {"event_time": ts, "ingested_at": ts, "produced_at": ts, "amount": pa.float64(), "score": pa.float64(), "record_ids": pa.list_(pa.string())}
for view, rows in (("records", body["records"]), ("feedback", body["feedback"])):
    by_day = {}
    for row in rows:
        day = dt.datetime.fromtimestamp(row["event_time"] / 1000, dt.timezone.utc).date().isoformat()
        by_day.setdefault(day, []).append(row)
    for day, day_rows in by_day.items():
        folder = os.path.join(body["dir"], view, "day=" + day)
        os.makedirs(folder, exist_ok=True)
        names = list(day_rows[0].keys())
        table = pa.table({n: pa.array([r[n] for r in day_rows], type=types.get(n, pa.string())) for n in names})
        pq.write_table(table, os.path.join(folder, "part-0.parquet"))
for root, dirs, files in os.walk(body["dir"]):
    for name in dirs + files:
        os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
`;

/** Writes both views under `dir` (readable by the job user when the tests run as root). */
export async function writeHistory(dir: string, records: readonly HistoryRecord[], feedback: readonly HistoryFeedback[]): Promise<void> {
  const written = await runPython(['-c', WRITE_HISTORY], JSON.stringify({ dir, records, feedback }));
  if (written.code !== 0) throw new Error(`writing the history failed: ${written.stderr}`);
}

export interface ExpectedSummary { records: number; spend_by_currency: Record<string, number>; feedback_by_kind: Record<string, number> }

/** What customer_summary must answer for `customer` since `since` (epoch ms). */
export function expectedSummary(records: readonly HistoryRecord[], feedback: readonly HistoryFeedback[], customer: string, since: number): ExpectedSummary {
  const mine = records.filter((r) => r.customer_id === customer && r.event_time >= since);
  const spend: Record<string, number> = {};
  for (const r of mine) if (r.currency !== null && r.amount !== null) spend[r.currency] = Math.round(((spend[r.currency] ?? 0) + r.amount) * 100) / 100;
  const kinds: Record<string, number> = {};
  for (const f of feedback.filter((f) => f.customer_id === customer && f.event_time >= since)) kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
  return { records: mine.length, spend_by_currency: spend, feedback_by_kind: kinds };
}
