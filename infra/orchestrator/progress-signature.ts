/**
 * Progress is accepted only from a live launch of its job: each launch gets a random key
 * (kept in the job's record in Redis, handed to the job in a 0600 file it removes once read),
 * and the SDK appends `"signature": HMAC-SHA256(key, text)` as the last field of every message
 * (usecases/sdk/diamond_sdk/_runtime/progress.py `signed`). Verifying the exact bytes avoids a
 * canonical JSON both languages would have to agree on.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const TRAILER = /,"signature":"([0-9a-f]{64})"\}\s*$/;

/** A fresh launch key (hex text: what the job's key file holds and the HMAC is keyed with). */
export function newProgressKey(): string {
  return randomBytes(32).toString('hex');
}

export function signProgress(text: string, key: string): string {
  if (!text.endsWith('}')) throw new Error('a progress message is a JSON object');
  return `${text.slice(0, -1)},"signature":"${createHmac('sha256', key).update(text).digest('hex')}"}`;
}

/** Whether `raw` carries a valid signature by one of `keys`. */
export function verifyProgress(raw: string, keys: readonly string[]): boolean {
  const match = TRAILER.exec(raw);
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1], 'hex');
  const text = `${raw.slice(0, match.index)}}`;
  return keys.some((key) => timingSafeEqual(createHmac('sha256', key).update(text).digest(), given));
}
