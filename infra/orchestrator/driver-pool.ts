/**
 * DriverPool: warm spare Spark drivers, so a job start (deploy, crash or stall restart,
 * upgrade, replay) skips spark-submit's JVM start, connector loading and first-batch JIT.
 *
 * A spare is started exactly as a job is (launcher.ts startSpare: same spark-submit, job
 * user, environment, own process group), warms up (warm.py), writes its ready file and waits
 * for an assignment. `claim` hands a ready spare whose key fits the deployment to a job: the
 * spare leaves the pool (fenced write) and becomes the job's JobProcess, so death watch,
 * kill -9, usage sampling and adoption see one process group per job as before. A driver
 * that ran a job is never given another (it exits with its job). The reconcile loop calls
 * `load` before anything else in a tick (so a restarted orchestrator's /proc scan knows the
 * spares it inherits) and `refill` after the jobs: dead spares are forgotten, spares of another
 * key (the config changed) or beyond the size are stopped, and one new spare is started at a
 * time while the pool is short. Spares live in Redis, so an orchestrator restart adopts them.
 */
import { randomUUID } from 'node:crypto';
import type { DiamondConfig } from '../../shared/config.ts';
import { backoffDelayMs } from '../../shared/backoff.ts';
import type { Logger } from '../../shared/logger.ts';
import { poolKey, poolKeyOf, type JobLauncher } from './launcher.ts';
import type { Deployment, SpareProcess } from './state.ts';
import type { DeploymentStore } from './store.ts';

/** Longest a refill waits for jobs that took a spare to finish their first batch. */
const REFILL_DEFER_MS = 60_000;

/** What `diamond status` and the control API show. */
export interface PoolStatus {
  /** Desired spares (DIAMOND_POOL_SIZE). */
  readonly size: number;
  readonly ready: number;
  readonly starting: number;
}

/** A claim's outcome: the spare to hand the job to, or why the job starts cold. */
export type Claim = { readonly spare: SpareProcess } | { readonly spare: null; readonly cold: string };

export class DriverPool {
  private readonly spares = new Map<string, SpareProcess>();
  private adopted = false;
  /** Spares that died before taking a job in a row: the next start waits a growing backoff. */
  private deaths = 0;
  private nextStartAt = 0;
  private lastClaimAt = 0;

  constructor(
    private readonly config: DiamondConfig,
    private readonly launcher: JobLauncher,
    private readonly store: DeploymentStore,
    private readonly log: Pick<Logger, 'info' | 'warn'>,
  ) {}

  get size(): number {
    return this.config.orchestrator.poolSize;
  }

  /** Whether `launchId` is one of the pool's spares (not an orphan). */
  has(launchId: string): boolean {
    return this.spares.has(launchId);
  }

  /**
   * Every tick, before anything else: the spares as stored. Redis is the truth (every change
   * of ours is written before the tick goes on), so spares a previous orchestrator, or this
   * one before it lost and regained the lease, left are adopted, and none is remembered
   * that another leader gave away meanwhile.
   */
  async load(): Promise<void> {
    const stored = await this.store.listSpares();
    this.spares.clear();
    for (const spare of stored) this.spares.set(spare.spareId, spare);
    if (!this.adopted && stored.length > 0) this.log.info({ spares: stored.map((s) => s.groupPid) }, 'adopted warm spare drivers');
    this.adopted = true;
  }

  /** Hands a ready spare that fits `deployment` to a job; it is no longer the pool's. */
  async claim(deployment: Deployment, fence: string | null): Promise<Claim> {
    if (this.size === 0) return { spare: null, cold: 'pool off (DIAMOND_POOL_SIZE=0)' };
    const key = poolKeyOf(this.config, deployment);
    if (key === null) return { spare: null, cold: 'the use case has its own Python environment (usecase-env); spares run the platform\'s' };
    const spare = [...this.spares.values()].find((s) => s.key === key && this.launcher.isReady(s) && this.launcher.isRunning(s));
    if (!spare) return { spare: null, cold: 'no warm spare ready' };
    this.spares.delete(spare.spareId);
    if (!(await this.store.removeSpareFenced(spare.spareId, fence))) return { spare: null, cold: 'the ready spare was taken meanwhile' };
    this.lastClaimAt = Date.now();
    return { spare };
  }

  /**
   * Forgets dead spares, stops unwanted ones, and starts one when the pool is short. While
   * `jobsStarting` (a job that took a spare has not finished its first batch yet) a new
   * spare waits, up to REFILL_DEFER_MS after the last claim: a warm-up takes both cores of a
   * small machine for seconds, exactly when the new job's first batch needs them.
   */
  async refill(fence: string | null, now: number, jobsStarting = false): Promise<void> {
    const key = poolKey(this.config);
    for (const spare of [...this.spares.values()]) {
      if (!this.launcher.isRunning(spare)) {
        this.deaths += 1;
        this.nextStartAt = now + backoffDelayMs(this.deaths, { initialMs: this.config.orchestrator.backoffInitialMs, maxMs: this.config.orchestrator.backoffMaxMs });
        this.log.warn({ spare: spare.spareId, pid: spare.groupPid, exitCode: this.launcher.exitCode(spare), error: this.launcher.lastError(spare), logFile: spare.logFile }, 'a warm spare driver died before taking a job');
        await this.forget(spare, fence);
        continue;
      }
      if (spare.key !== key || this.spares.size > this.size) {
        this.log.info({ spare: spare.spareId, pid: spare.groupPid }, spare.key === key ? 'stopping a spare driver beyond DIAMOND_POOL_SIZE' : 'stopping a spare driver of another configuration');
        this.launcher.kill(spare);
        await this.forget(spare, fence);
        continue;
      }
      if (spare.readyAt === null && this.launcher.isReady(spare)) {
        const ready = { ...spare, readyAt: now };
        this.spares.set(spare.spareId, ready);
        await this.store.putSpareFenced(ready, fence);
        this.deaths = 0;
        this.log.info({ spare: spare.spareId, pid: spare.groupPid, warmMs: now - spare.startedAt }, 'warm spare driver ready');
      }
    }
    const warming = [...this.spares.values()].some((s) => s.readyAt === null);
    if (this.spares.size >= this.size || warming || now < this.nextStartAt) return;
    if (jobsStarting && now - this.lastClaimAt < REFILL_DEFER_MS) return;
    const spareId = `spare-${new Date(now).toISOString().replaceAll(':', '').replace(/\.\d+Z$/, 'Z')}-${randomUUID().slice(0, 8)}`;
    const spare = this.launcher.startSpare(spareId, key);
    this.spares.set(spareId, spare);
    await this.store.putSpareFenced(spare, fence);
    this.log.info({ spare: spareId, pid: spare.groupPid, logFile: spare.logFile }, 'starting a warm spare driver');
  }

  private async forget(spare: SpareProcess, fence: string | null): Promise<void> {
    this.spares.delete(spare.spareId);
    await this.store.removeSpareFenced(spare.spareId, fence);
  }
}

/** The pool as stored (any process with the store can show it: the control API, `diamond status`). */
export async function poolStatus(config: DiamondConfig, store: DeploymentStore): Promise<PoolStatus> {
  const spares = await store.listSpares();
  const ready = spares.filter((s) => s.readyAt !== null).length;
  return { size: config.orchestrator.poolSize, ready, starting: spares.length - ready };
}
