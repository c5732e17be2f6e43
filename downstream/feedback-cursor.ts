/**
 * Pagination cursors of the feedback API. A cursor names the customer it was issued to and
 * the filters of its query, and is signed (HMAC-SHA256), so a caller cannot forge a
 * position, nor replay another customer's cursor or swap the filters under it. (The query
 * itself is always restricted to the authenticated customer's partitions as well.)
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface CursorPosition {
  /** Customer the cursor was issued to. */
  readonly customer: string;
  readonly since: number;
  readonly usecase: string | null;
  /** Last row returned: its event_time and feedback_id. */
  readonly eventTime: number;
  readonly feedbackId: string;
}

export class CursorCodec {
  readonly #secret: Buffer;

  constructor(secret: Buffer) {
    this.#secret = secret;
  }

  /** The signing secret is shared by every API process through Redis (created once). */
  static async fromRedis(redis: Redis): Promise<CursorCodec> {
    await redis.set('api:cursor-secret', randomBytes(32).toString('hex'), 'NX');
    const secret = await redis.get('api:cursor-secret');
    if (!secret) throw new Error('cursor secret missing in Redis after SET NX');
    return new CursorCodec(Buffer.from(secret, 'hex'));
  }

  encode(position: CursorPosition): string {
    const body = Buffer.from(JSON.stringify([position.customer, position.since, position.usecase, position.eventTime, position.feedbackId])).toString('base64url');
    return `${body}.${this.#sign(body)}`;
  }

  /** The position, or null when the cursor is malformed or its signature does not match. */
  decode(cursor: string): CursorPosition | null {
    const [body, signature, extra] = cursor.split('.');
    if (!body || !signature || extra !== undefined) return null;
    const expected = Buffer.from(this.#sign(body));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    try {
      const [customer, since, usecase, eventTime, feedbackId] = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown[];
      if (typeof customer !== 'string' || typeof since !== 'number' || (usecase !== null && typeof usecase !== 'string') || typeof eventTime !== 'number' || typeof feedbackId !== 'string') return null;
      return { customer, since, usecase, eventTime, feedbackId };
    } catch {
      return null;
    }
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#secret).update(body).digest('base64url');
  }
}
