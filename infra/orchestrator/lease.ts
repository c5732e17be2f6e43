/**
 * Leader election: one orchestrator acts at a time. The lease is a Redis key that its
 * holder renews every tick (a tick is at most a third of its TTL), so a killed leader's
 * lease expires and another orchestrator takes over and adopts the running jobs.
 *
 * The lease's value is a fencing token (`<holder>@<generation>`, the generation bumped on
 * every acquisition). Job records are written only while the lease carries the writer's
 * token (store.putJobFenced), so a leader that paused past its lease (GC, SIGSTOP, a slow
 * disk) cannot overwrite its successor's records when it resumes: its write is refused
 * and it steps down (`lost()`).
 */
import type { DeploymentStore } from './store.ts';

export type LeaseChange = 'acquired' | 'lost' | 'unchanged';

export class LeaderLease {
  private token: string | null = null;

  constructor(private readonly store: DeploymentStore, readonly holder: string, private readonly ttlMs: number) {}

  get isHeld(): boolean {
    return this.token !== null;
  }

  /** The fencing token of the current tenure; null when not leading. */
  get fence(): string | null {
    return this.token;
  }

  /** Acquires or renews the lease; says whether leadership changed (a new token is a new tenure). */
  async renew(): Promise<LeaseChange> {
    const token = await this.store.acquireLease(this.holder, this.ttlMs);
    if (token === this.token) return 'unchanged';
    // A different token while we held one: it expired meanwhile and we acquired it anew.
    this.token = token;
    return token === null ? 'lost' : 'acquired';
  }

  /**
   * Extends the held lease without acquiring one. Called on a timer every third of the TTL,
   * apart from the ticks: a tick slowed by a loaded machine (a /proc scan, Kafka calls) must
   * not let the lease lapse under its own writes. A process that is really paused runs no
   * timers either, so fencing still catches it. False when the lease is no longer ours.
   */
  async keepAlive(): Promise<boolean> {
    if (this.token === null) return false;
    return this.store.renewLease(this.token, this.ttlMs);
  }

  /** A fenced write was refused: leadership is gone even though the lease looked held. */
  lost(): void {
    this.token = null;
  }

  /** Gives the lease up (best effort) so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    if (this.token !== null) await this.store.releaseLease(this.token).catch(() => undefined);
    this.token = null;
  }
}
