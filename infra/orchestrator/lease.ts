/**
 * Leader election: one orchestrator acts at a time. The lease is a Redis key (SET NX PX)
 * that its holder renews every tick (a tick is at most a third of its TTL), so a killed
 * leader's lease expires and another orchestrator takes over and adopts the running jobs.
 */
import type { DeploymentStore } from './store.ts';

export type LeaseChange = 'acquired' | 'lost' | 'unchanged';

export class LeaderLease {
  private held = false;

  constructor(private readonly store: DeploymentStore, readonly holder: string, private readonly ttlMs: number) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** Acquires or renews the lease; says whether leadership changed. */
  async renew(): Promise<LeaseChange> {
    const leads = await this.store.acquireLease(this.holder, this.ttlMs);
    if (leads === this.held) return 'unchanged';
    this.held = leads;
    return leads ? 'acquired' : 'lost';
  }

  /** Gives the lease up (best effort) so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    if (this.held) await this.store.releaseLease(this.holder).catch(() => undefined);
    this.held = false;
  }
}
