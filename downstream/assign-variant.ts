/**
 * The A/B post-filter: which variant of a use case a customer sees.
 *
 *   const weights = parseWeights('A=90,B=10');
 *   assignVariant('acme', 'spending', weights); // 'A' or 'B', the same answer every time
 *
 * A customer's bucket is a stable hash of (usecase, customer_id) mod 10,000. The weights cut
 * the bucket range into consecutive slices in variant order (A first, then B, …). Raising
 * B's share moves the A/B boundary down, so only customers of A cross over to B — never
 * back and forth — and a customer's variant changes only when its weights change.
 */
import { createHash } from 'node:crypto';
import { InvalidWeightsError, type Weights } from '../shared/rollout-weights.ts';

// The weights and their store are the contract downstream shares with the control plane (shared/).
export { formatWeights, InvalidWeightsError, parseWeights, validateWeights, type Weights } from '../shared/rollout-weights.ts';

export const BUCKETS = 10_000;

/** Stable across processes, machines and releases: sha256, first 4 bytes, mod 10,000. */
export function bucketOf(customerId: string, usecase: string): number {
  const digest = createHash('sha256').update(usecase).update('\0').update(customerId).digest();
  return digest.readUInt32BE(0) % BUCKETS;
}

/** Bucket ranges [from, to) per variant, in variant order. */
export function bucketRanges(weights: Weights): { variant: string; from: number; to: number }[] {
  const variants = Object.keys(weights).sort();
  const total = variants.reduce((sum, variant) => sum + (weights[variant] ?? 0), 0);
  if (total <= 0) throw new InvalidWeightsError('every weight is 0');
  let cumulative = 0;
  return variants.map((variant) => {
    const from = Math.round((cumulative / total) * BUCKETS);
    cumulative += weights[variant] ?? 0;
    return { variant, from, to: Math.round((cumulative / total) * BUCKETS) };
  });
}

/** The variant whose output reaches this customer (`null`: no variant has weight). */
export function variantForBucket(bucket: number, weights: Weights): string | null {
  return bucketRanges(weights).find((range) => bucket >= range.from && bucket < range.to)?.variant ?? null;
}

export function assignVariant(customerId: string, usecase: string, weights: Weights): string | null {
  return variantForBucket(bucketOf(customerId, usecase), weights);
}
