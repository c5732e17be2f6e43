/**
 * Downstream: feedback.raw (Avro) → the A/B post-filter → Cassandra (idempotent upserts) →
 * the customer feedback API (pages + live stream); records.normalized → the history table.
 * The only door into downstream/ for the rest of the tree (infra/ imports nothing else).
 *
 *   const downstream = await startDownstream(config, { logger, parts: DOWNSTREAM_PARTS }); // writers + API
 *   await new RolloutStore(redis).set('spending_spike', parseWeights('A=90,B=10'));        // next batch on
 *   const apiKey = await new CustomerKeys(redis).add('customer-1');                        // a customer's key
 *   const report = compareVariants(usecase, days, await readVariantRows(cassandra, keyspace, usecase, ['A', 'B'], days));
 *   await downstream.stop();
 */
export { startDownstream, DOWNSTREAM_PARTS, DOWNSTREAM_DEPENDENCIES, type DownstreamPart, type DownstreamOptions, type RunningDownstream } from './service.ts';
export { assignVariant, bucketRanges, formatWeights, parseWeights, validateWeights, InvalidWeightsError, type Weights } from './assign-variant.ts';
export { RolloutStore } from './rollout-store.ts';
export { CustomerKeys, InvalidCustomerIdError } from './customer-keys.ts';
export { compareVariants, readVariantRows, type AbReport, type VariantRow, type VariantStats } from './ab-report.ts';
export { type AbComparison } from './ab-comparison.ts';
