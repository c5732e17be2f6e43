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
import { DiamondError } from '../shared/errors.ts';

export const BUCKETS = 10_000;

/** Share of each variant, e.g. { A: 90, B: 10 }. Only the ratios matter. */
export type Weights = Readonly<Record<string, number>>;

export class InvalidWeightsError extends DiamondError {
  constructor(message: string) {
    super(message, { code: 'DIAMOND_ROLLOUT_WEIGHTS_INVALID', hint: 'write weights as VARIANT=NUMBER pairs, e.g. A=90,B=10 (non-negative, at least one above 0)' });
  }
}

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

/** `'A=90,B=10'` → `{ A: 90, B: 10 }`; throws InvalidWeightsError naming the bad part. */
export function parseWeights(text: string): Weights {
  const weights: Record<string, number> = {};
  for (const part of text.split(',').map((item) => item.trim()).filter(Boolean)) {
    const match = /^([A-Za-z0-9_-]{1,32})=(\d+(?:\.\d+)?)$/.exec(part);
    if (!match?.[1] || match[2] === undefined) throw new InvalidWeightsError(`"${part}" is not VARIANT=NUMBER`);
    if (match[1] in weights) throw new InvalidWeightsError(`variant ${match[1]} is given twice`);
    weights[match[1]] = Number(match[2]);
  }
  validateWeights(weights);
  return weights;
}

export function validateWeights(weights: Weights): void {
  const values = Object.values(weights);
  if (values.length === 0) throw new InvalidWeightsError('no weights given');
  if (values.some((value) => !Number.isFinite(value) || value < 0)) throw new InvalidWeightsError('weights must be non-negative numbers');
  if (!values.some((value) => value > 0)) throw new InvalidWeightsError('every weight is 0');
}

export function formatWeights(weights: Weights): string {
  return Object.keys(weights).sort().map((variant) => `${variant}=${weights[variant]}`).join(',');
}
