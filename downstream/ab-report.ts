/**
 * A/B comparison of a use case's variants, from `feedback_by_variant` (every variant's
 * output, delivered or not). Served by the feedback API at `GET /v1/ab/<usecase>`
 * (ab-comparison.ts), which `diamond ab` and the control API call.
 *
 * Agreement is measured on what the variants say about the same records: each row is reduced
 * to (customer, records it is about, kind); agreement = |both| / |either| (Jaccard) over those
 * findings, for each pair of variants.
 */
import type { CassandraClient } from '../shared/cassandra.ts';
import { utcDay } from './cassandra-rows.ts';
import { VARIANT_SHARDS } from './migrations.ts';

export interface VariantRow {
  readonly variant: string;
  readonly customer_id: string;
  readonly kind: string;
  readonly record_ids: readonly string[];
  readonly event_time: number;
  readonly produced_at: number;
  readonly written_at: number;
}

export interface VariantStats {
  readonly variant: string;
  readonly rows: number;
  readonly customers: number;
  readonly rowsPerCustomer: number;
  /** produced_at − event_time (use case latency), milliseconds. */
  readonly produceLatencyMs: { readonly p50: number; readonly p99: number };
  /** written_at − produced_at (Kafka + writer latency), milliseconds. */
  readonly writeLatencyMs: { readonly p50: number; readonly p99: number };
}

export interface AbReport {
  readonly usecase: string;
  readonly days: number;
  readonly variants: readonly VariantStats[];
  readonly agreement: readonly { readonly variants: readonly [string, string]; readonly ratio: number; readonly both: number; readonly either: number }[];
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const finding = (row: VariantRow): string => JSON.stringify([row.customer_id, [...row.record_ids].sort(), row.kind]);

export function compareVariants(usecase: string, days: number, rows: readonly VariantRow[]): AbReport {
  const byVariant = new Map<string, VariantRow[]>();
  for (const row of rows) byVariant.set(row.variant, [...(byVariant.get(row.variant) ?? []), row]);
  const names = [...byVariant.keys()].sort();
  const variants = names.map((variant): VariantStats => {
    const own = byVariant.get(variant)!;
    const customers = new Set(own.map((r) => r.customer_id)).size;
    const produce = own.map((r) => r.produced_at - r.event_time).sort((a, b) => a - b);
    const write = own.map((r) => r.written_at - r.produced_at).sort((a, b) => a - b);
    return {
      variant, rows: own.length, customers, rowsPerCustomer: customers === 0 ? 0 : own.length / customers,
      produceLatencyMs: { p50: percentile(produce, 0.5), p99: percentile(produce, 0.99) },
      writeLatencyMs: { p50: percentile(write, 0.5), p99: percentile(write, 0.99) },
    };
  });
  const findings = new Map(names.map((name) => [name, new Set(byVariant.get(name)!.map(finding))]));
  const agreement = names.flatMap((a, i) => names.slice(i + 1).map((b) => {
    const setA = findings.get(a)!;
    const setB = findings.get(b)!;
    const both = [...setA].filter((f) => setB.has(f)).length;
    const either = setA.size + setB.size - both;
    return { variants: [a, b] as const, ratio: either === 0 ? 1 : both / either, both, either };
  }));
  return { usecase, days, variants, agreement };
}

/** Reads every variant's rows of the last `days` days (one query per variant, day and shard). */
export async function readVariantRows(cassandra: CassandraClient, keyspace: string, usecase: string, variants: readonly string[], days: number, now = Date.now()): Promise<VariantRow[]> {
  const query = `SELECT variant, customer_id, kind, record_ids, event_time, produced_at, written_at FROM ${keyspace}.feedback_by_variant WHERE usecase = ? AND variant = ? AND day = ? AND shard = ?`;
  const rows: VariantRow[] = [];
  for (const variant of variants) {
    for (let d = 0; d <= days; d++) {
      const day = utcDay(now - d * 24 * 3600 * 1000);
      const pages = await Promise.all(Array.from({ length: VARIANT_SHARDS }, async (_, shard) => {
        const found: VariantRow[] = [];
        let pageState: string | undefined;
        do {
          const page = await cassandra.execute(query, [usecase, variant, day, shard], { prepare: true, fetchSize: 5000, pageState });
          for (const row of page.rows) {
            found.push({
              variant: row.get('variant') as string,
              customer_id: row.get('customer_id') as string,
              kind: (row.get('kind') as string | null) ?? '',
              record_ids: (row.get('record_ids') as string[] | null) ?? [],
              event_time: (row.get('event_time') as Date).getTime(),
              produced_at: (row.get('produced_at') as Date).getTime(),
              written_at: (row.get('written_at') as Date).getTime(),
            });
          }
          pageState = page.pageState ?? undefined;
        } while (pageState);
        return found;
      }));
      rows.push(...pages.flat());
    }
  }
  return rows;
}
