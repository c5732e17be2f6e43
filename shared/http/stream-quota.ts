/**
 * How many streams (server-sent events, followed logs) one client — a token, a customer — may
 * hold open at once, so that one client cannot take every connection of an API. Counted per
 * process, which is where connections live.
 *
 *   const release = quota.acquire(customer);   // throws 429 DIAMOND_STREAM_LIMIT past the cap
 *   response.once('close', release);
 */
import { ApiError } from '../errors.ts';

export class StreamQuota {
  readonly #open = new Map<string, number>();

  /** `hint` tells a refused client what to do ("close another `diamond events --follow`"). */
  constructor(readonly perClient: number, private readonly hint: string) {}

  /** Counts one more open stream of `client`; the returned function releases it (once). */
  acquire(client: string): () => void {
    const open = this.#open.get(client) ?? 0;
    if (open >= this.perClient) {
      throw new ApiError('DIAMOND_STREAM_LIMIT', `${open} streams are open already for this caller (at most ${this.perClient}, DIAMOND_HTTP_STREAMS_PER_CLIENT)`, this.hint, { 'retry-after': '5' });
    }
    this.#open.set(client, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(client) ?? 1) - 1;
      if (left <= 0) this.#open.delete(client);
      else this.#open.set(client, left);
    };
  }

  openFor(client: string): number {
    return this.#open.get(client) ?? 0;
  }
}
