/**
 * DeploymentStore: the orchestrator's Redis state. Desired state (deployments), actual
 * state (job records with attempt counters, so backoff survives an orchestrator restart),
 * what each job last reported, and the leader lease. Every key lives under the client's
 * key prefix, so tests use a unique one.
 */
import type { Redis } from 'ioredis';
import { LeaseLostError } from '../../shared/errors.ts';
import type { AlertStatus } from './alert-rules.ts';
import type { HistoryArchiveStatus } from './history-archive.ts';
import type { DeclaredResources, Deployment, DeploymentSettings, JobRecord, SpareProcess } from './state.ts';

const DEPLOYMENTS = 'deployments';
const GENERATIONS = 'generations';
const JOBS = 'jobs';
const REPORTED = 'reported';
const STOPPED = 'stopped-reports';
const FAILURES = 'failures';
const LEASE = 'leader';
const HISTORY_ARCHIVE = 'history-archive';
/** Bumped on every acquisition of the lease: the fencing token's generation. */
const LEASE_GENERATION = 'leader:generation';
/** Per job: the launch id about to be spawned (written, fenced, before the spawn). */
const LAUNCHES = 'launches';
const METRICS = 'metrics';
/** Per job: the durations (ms) of its latest batches, newest first, for status' p50/p99. */
const BATCH_DURATIONS = 'batch-durations';
/** How many batches status' latency percentiles cover. */
export const LATENCY_BATCHES = 100;
const REPLAYS = 'replays';
const BACKFILLS = 'backfills';
const FENCES = 'fences';
/** Pending and firing alerts, `<rule>|<job>` → AlertStatus (alert-rules.ts). */
const ALERTS = 'alerts';
/** The driver pool's spares, by spare id (driver-pool.ts). */
const POOL = 'pool';

/** What status shows besides the record: throughput from progress reports, sampled usage. */
export interface JobMetrics {
  readonly recordsPerSecond?: number | null;
  readonly lastBatchAt?: number;
  /** Spark's triggerExecution of the last batch. */
  readonly batchDurationMs?: number | null;
  readonly batchRows?: number | null;
  readonly cpu?: number | null;
  readonly memoryMb?: number;
  readonly processes?: number;
  readonly usageAt?: number;
  /** When the orchestrator last moved the job's committed offsets (a commit or a replay): Kafka's offset retention counts from it. */
  readonly committedAt?: number;
  /** When the reconciler last found the job stalled (offsets standing while records wait, or no report since its launch). */
  readonly stalledAt?: number;
  /** The Spark UI of the job's latest launch (its `started` report). */
  readonly sparkUiUrl?: string;
  /** The last `backfilling` heartbeat of the job's backfill (its group does not move meanwhile). */
  readonly backfillingAt?: number;
}

/** `diamond replay`: move the job's group back to `since` and restart it. */
export interface ReplayRequest {
  readonly since: number;
  readonly requestedAt: number;
  /** `diamond backfill`: the group moves to where the archived history ends, and the job runs over the history since `since` before its stream. */
  readonly backfill?: boolean;
}

/** A job's `backfilled` report: what its backfill read, wrote and rejected. */
export interface BackfillReport {
  readonly at: number;
  readonly since: string;
  readonly historyBatch: number;
  readonly rowsIn: number;
  readonly rowsOut: number;
  readonly rowsRejected: number;
  readonly durationMs: number;
}

/** What a job's runner said when it failed (from its `failed` progress message). */
export interface ReportedFailure {
  readonly at: number;
  readonly message: string;
}

/**
 * The lease's value is its fencing token, `<holder>@<generation>`. Acquiring a free lease
 * increments the generation; the holder renews it while it holds it. A holder whose lease
 * expired gets a new token when it acquires it again, so writes made with the old one
 * (computed on a view from before the pause) are refused.
 */
const ACQUIRE = `
local v = redis.call('get', KEYS[1])
if not v then
  local token = ARGV[1] .. '@' .. redis.call('incr', KEYS[2])
  redis.call('set', KEYS[1], token, 'PX', ARGV[2])
  return token
end
if string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '@' then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return v
end
return false`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
/** HSET only while the lease still carries the writer's token. */
const FENCED_HSET = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('hset', KEYS[2], ARGV[2], ARGV[3]) + 1 else return 0 end`;
/** HDEL only while the lease still carries the writer's token: 1 + fields removed, 0 when refused. */
const FENCED_HDEL = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('hdel', KEYS[2], ARGV[2]) + 1 else return 0 end`;

export function deploymentKey(usecase: string, variant: string): string {
  return `${usecase}.${variant}`;
}

export class DeploymentStore {
  constructor(private readonly redis: Redis) {}

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  async putDeployment(spec: { usecase: string; variant: string; folder: string; version: string; stateful?: boolean; settings?: DeploymentSettings; resources?: DeclaredResources; pythonEnv?: string | null }): Promise<Deployment> {
    const key = deploymentKey(spec.usecase, spec.variant);
    const generation = await this.redis.hincrby(GENERATIONS, key, 1);
    const deployment: Deployment = {
      usecase: spec.usecase, variant: spec.variant, folder: spec.folder, version: spec.version, stateful: spec.stateful ?? false, generation,
      deployedAt: new Date().toISOString(), settings: spec.settings ?? {},
      ...(spec.resources ? { resources: spec.resources } : {}), ...(spec.pythonEnv ? { pythonEnv: spec.pythonEnv } : {}),
    };
    await this.redis.hset(DEPLOYMENTS, key, JSON.stringify(deployment));
    return deployment;
  }

  async removeDeployment(usecase: string, variant: string): Promise<boolean> {
    return (await this.redis.hdel(DEPLOYMENTS, deploymentKey(usecase, variant))) > 0;
  }

  async getDeployment(usecase: string, variant: string): Promise<Deployment | null> {
    const raw = await this.redis.hget(DEPLOYMENTS, deploymentKey(usecase, variant));
    return raw ? (JSON.parse(raw) as Deployment) : null;
  }

  async listDeployments(): Promise<Deployment[]> {
    return Object.values(await this.redis.hgetall(DEPLOYMENTS)).map((raw) => JSON.parse(raw) as Deployment);
  }

  async getJob(jobId: string): Promise<JobRecord | null> {
    const raw = await this.redis.hget(JOBS, jobId);
    return raw ? (JSON.parse(raw) as JobRecord) : null;
  }

  async listJobs(): Promise<JobRecord[]> {
    return Object.values(await this.redis.hgetall(JOBS)).map((raw) => JSON.parse(raw) as JobRecord);
  }

  /** Unfenced: for tools and tests. The orchestrator and `diamond down` write through putJobFenced. */
  async putJob(record: JobRecord): Promise<void> {
    await this.redis.hset(JOBS, record.jobId, JSON.stringify(record));
  }

  /** Writes the record only while `fence` (the writer's lease token) is the lease's; throws LeaseLostError otherwise. */
  async putJobFenced(record: JobRecord, fence: string | null): Promise<void> {
    await this.fencedHset(JOBS, record.jobId, JSON.stringify(record), fence);
  }

  /** The launch about to be spawned, written (fenced) before the spawn: a stale leader never spawns. */
  async putLaunchIntent(jobId: string, launchId: string, fence: string | null): Promise<void> {
    await this.fencedHset(LAUNCHES, jobId, JSON.stringify({ launchId, at: Date.now() }), fence);
  }

  async launchIntent(jobId: string): Promise<{ launchId: string; at: number } | null> {
    const raw = await this.redis.hget(LAUNCHES, jobId);
    return raw ? (JSON.parse(raw) as { launchId: string; at: number }) : null;
  }

  async listSpares(): Promise<SpareProcess[]> {
    return Object.values(await this.redis.hgetall(POOL)).map((raw) => JSON.parse(raw) as SpareProcess);
  }

  async putSpareFenced(spare: SpareProcess, fence: string | null): Promise<void> {
    await this.fencedHset(POOL, spare.spareId, JSON.stringify(spare), fence);
  }

  /** Takes a spare out of the pool (fenced); false when it was not in it. */
  async removeSpareFenced(spareId: string, fence: string | null): Promise<boolean> {
    const result = fence === null ? 0 : Number(await this.redis.eval(FENCED_HDEL, 2, LEASE, POOL, fence, spareId));
    if (result === 0) throw new LeaseLostError(fence, await this.leaseHolder());
    return result > 1;
  }

  private async fencedHset(hash: string, field: string, value: string, fence: string | null): Promise<void> {
    const written = fence !== null && Number(await this.redis.eval(FENCED_HSET, 2, LEASE, hash, fence, field, value)) > 0;
    if (!written) throw new LeaseLostError(fence, await this.leaseHolder());
  }

  /** Remembers that `version` of a job reported (started or progress) at `at`. */
  async markReported(jobId: string, version: string, at: number): Promise<void> {
    const field = `${jobId}@${version}`;
    const before = Number((await this.redis.hget(REPORTED, field)) ?? -1);
    if (at > before) await this.redis.hset(REPORTED, field, String(at));
  }

  async reportedAt(jobId: string, version: string): Promise<number | null> {
    const raw = await this.redis.hget(REPORTED, `${jobId}@${version}`);
    return raw === null ? null : Number(raw);
  }

  /** A run's `stopped` report was consumed: every batch it reported before is committed. */
  async markStopped(jobId: string, version: string, at: number): Promise<void> {
    const field = `${jobId}@${version}`;
    const before = Number((await this.redis.hget(STOPPED, field)) ?? -1);
    if (at > before) await this.redis.hset(STOPPED, field, String(at));
  }

  async stoppedAt(jobId: string, version: string): Promise<number | null> {
    const raw = await this.redis.hget(STOPPED, `${jobId}@${version}`);
    return raw === null ? null : Number(raw);
  }

  async markFailure(jobId: string, failure: ReportedFailure): Promise<void> {
    await this.redis.hset(FAILURES, jobId, JSON.stringify(failure));
  }

  async lastFailure(jobId: string): Promise<ReportedFailure | null> {
    const raw = await this.redis.hget(FAILURES, jobId);
    return raw ? (JSON.parse(raw) as ReportedFailure) : null;
  }

  /** Merges `metrics` into what is stored for the job: one HSET, no read. */
  async mergeMetrics(jobId: string, metrics: JobMetrics): Promise<void> {
    const fields = Object.entries(metrics).filter(([, value]) => value !== undefined).flatMap(([name, value]) => [name, JSON.stringify(value)]);
    if (fields.length > 0) await this.redis.hset(`${METRICS}:${jobId}`, ...fields);
  }

  /**
   * Keeps the duration of a finished batch among the job's latest LATENCY_BATCHES (one list in
   * Redis, so status in any process sees it and an orchestrator restart keeps it).
   */
  async recordBatchDuration(jobId: string, ms: number): Promise<void> {
    await this.redis.multi().lpush(`${BATCH_DURATIONS}:${jobId}`, String(ms)).ltrim(`${BATCH_DURATIONS}:${jobId}`, 0, LATENCY_BATCHES - 1).exec();
  }

  /** The durations (ms) of the job's latest batches, newest first. */
  async recentBatchDurations(jobId: string): Promise<number[]> {
    return (await this.redis.lrange(`${BATCH_DURATIONS}:${jobId}`, 0, LATENCY_BATCHES - 1)).map(Number).filter(Number.isFinite);
  }

  async jobMetrics(jobId: string): Promise<JobMetrics> {
    const fields = await this.redis.hgetall(`${METRICS}:${jobId}`);
    return Object.fromEntries(Object.entries(fields).map(([name, raw]) => [name, JSON.parse(raw)]));
  }

  /** The pending and firing alerts, by `<rule>|<job>`. */
  async alertStatuses(): Promise<Map<string, AlertStatus>> {
    const fields = await this.redis.hgetall(ALERTS);
    return new Map(Object.entries(fields).map(([key, raw]) => [key, JSON.parse(raw) as AlertStatus]));
  }

  /** Replaces the stored alert statuses by `statuses` (one transaction: what is gone is deleted). */
  async putAlertStatuses(statuses: ReadonlyMap<string, AlertStatus>, before: ReadonlyMap<string, AlertStatus>): Promise<void> {
    const gone = [...before.keys()].filter((key) => !statuses.has(key));
    const changed = [...statuses].filter(([key, status]) => JSON.stringify(before.get(key)) !== JSON.stringify(status));
    if (gone.length === 0 && changed.length === 0) return;
    const multi = this.redis.multi();
    if (gone.length > 0) multi.hdel(ALERTS, ...gone);
    if (changed.length > 0) multi.hset(ALERTS, ...changed.flatMap(([key, status]) => [key, JSON.stringify(status)]));
    await multi.exec();
  }

  async requestReplay(jobId: string, request: ReplayRequest): Promise<void> {
    await this.redis.hset(REPLAYS, jobId, JSON.stringify(request));
  }

  /** Every pending replay, by job id (one read per tick). */
  async pendingReplays(): Promise<Map<string, ReplayRequest>> {
    return new Map(Object.entries(await this.redis.hgetall(REPLAYS)).map(([jobId, raw]) => [jobId, JSON.parse(raw) as ReplayRequest]));
  }

  async completeReplay(jobId: string): Promise<void> {
    await this.redis.hdel(REPLAYS, jobId);
  }

  async putBackfillReport(jobId: string, report: BackfillReport): Promise<void> {
    await this.redis.hset(BACKFILLS, jobId, JSON.stringify(report));
  }

  async backfillReport(jobId: string): Promise<BackfillReport | null> {
    const raw = await this.redis.hget(BACKFILLS, jobId);
    return raw === null ? null : JSON.parse(raw) as BackfillReport;
  }

  async clearBackfillReport(jobId: string): Promise<void> {
    await this.redis.hdel(BACKFILLS, jobId);
  }

  /**
   * Progress reports timestamped before the fence are not committed: after a replay moved
   * the group back, a late-consumed report of the stopped process must not undo it.
   */
  async setOffsetFence(jobId: string, at: number): Promise<void> {
    await this.redis.hset(FENCES, jobId, String(at));
  }

  async offsetFence(jobId: string): Promise<number> {
    return Number((await this.redis.hget(FENCES, jobId)) ?? 0);
  }

  /** Acquires a free lease or renews `holder`'s: its fencing token, or null when another holds it. */
  async acquireLease(holder: string, ttlMs: number): Promise<string | null> {
    const token = await this.redis.eval(ACQUIRE, 2, LEASE, LEASE_GENERATION, holder, String(ttlMs));
    return typeof token === 'string' ? token : null;
  }

  /** Extends the lease while it still carries `fence`. */
  async renewLease(fence: string, ttlMs: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, LEASE, fence, String(ttlMs))) === 1;
  }

  async releaseLease(fence: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, LEASE, fence);
  }

  /** The history archiver as the leader last saw it (history-archive.ts), for /v1/status. */
  async putHistoryArchiveStatus(status: HistoryArchiveStatus): Promise<void> {
    await this.redis.set(HISTORY_ARCHIVE, JSON.stringify({ ...status, at: new Date().toISOString() }));
  }

  async historyArchiveStatus(): Promise<(HistoryArchiveStatus & { at: string }) | null> {
    const raw = await this.redis.get(HISTORY_ARCHIVE);
    return raw === null ? null : (JSON.parse(raw) as HistoryArchiveStatus & { at: string });
  }

  /** Who holds the lease (without its token's generation). */
  async leaseHolder(): Promise<string | null> {
    const token = await this.redis.get(LEASE);
    return token === null ? null : token.replace(/@\d+$/, '');
  }
}
