/**
 * The A/B comparison downstream serves at `GET /v1/ab/<usecase>` (what `diamond ab --json`
 * prints and the control API relays): rollout weights from Redis, every variant's rows from
 * `feedback_by_variant`. Downstream owns those tables, so the report is computed here and
 * nobody else reads them.
 */
import type { Weights } from './assign-variant.ts';
import { compareVariants, readVariantRows, type AbReport } from './ab-report.ts';
import type { RolloutStore } from './rollout-store.ts';
import type { CassandraClient } from '../shared/cassandra.ts';

export type AbComparison = AbReport & { readonly weights: Weights | null };

/** Variants default to those with rollout weights, else A and B. */
export async function compareUsecase(
  cassandra: CassandraClient,
  keyspace: string,
  rollouts: RolloutStore,
  query: { readonly usecase: string; readonly days: number; readonly variants?: readonly string[] | undefined },
): Promise<AbComparison> {
  const weights = await rollouts.get(query.usecase);
  const names = query.variants ?? (weights ? Object.keys(weights).sort() : ['A', 'B']);
  const rows = await readVariantRows(cassandra, keyspace, query.usecase, names, query.days);
  return { ...compareVariants(query.usecase, query.days, rows), weights };
}
