/**
 * The orchestrator's data and pure decisions: what a deployment (desired state) and a job
 * record (actual state, as last observed) look like, restart backoff, crash-loop detection
 * and monotonic offset merging. No I/O here, so all of it is unit-tested beside this file.
 */
import { backoffDelayMs as sharedBackoffDelayMs } from '../../shared/backoff.ts';

/** Desired state of one use case variant, written by `diamond deploy`. */
export interface Deployment {
  readonly usecase: string;
  readonly variant: string;
  /** Absolute folder of the use case (what spark-submit runs). */
  readonly folder: string;
  /** Code version: hash of the folder (see version.ts). */
  readonly version: string;
  /**
   * Stateful jobs keep a Spark checkpoint, which two versions cannot share: their upgrade
   * stops the old version first, then starts the new one from the checkpoint.
   */
  readonly stateful: boolean;
  /** Bumped on every deploy: a redeploy clears a crash loop. */
  readonly generation: number;
  readonly deployedAt: string;
  readonly settings: DeploymentSettings;
  /** What the manifest declares; admission control sums these against the budget. */
  readonly resources?: DeclaredResources;
  /**
   * The use case's own Python environment (built from its requirements.txt, cached by
   * content hash); absent = the platform's environment.
   */
  readonly pythonEnv?: string | null;
}

export interface DeclaredResources {
  readonly cores: number;
  readonly memoryMb: number;
}

export interface DeploymentSettings {
  /** Where to start when the group has no committed offsets (default: the config's). */
  readonly startingOffsets?: 'earliest' | 'latest';
  /** Overrides the manifest's trigger, e.g. 500ms. */
  readonly trigger?: string;
}

/** The reconciler's states (its opening comment draws the transitions). */
export const JOB_STATES = ['starting', 'running', 'upgrading', 'backoff', 'replaying', 'crash-looping', 'stopped'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** One spark-submit process group we started (or adopted). */
export interface JobProcess {
  /** Leader of the process group (the wrapper shell around spark-submit). */
  readonly groupPid: number;
  /**
   * A string the command line of every process of the launch contains (the per-launch
   * driver pid file path, `<jobs dir>/<job id>/<launch id>.driver.pid`): it finds the
   * launch's processes under /proc even after the group leader died, and guards against
   * reused pids.
   */
  readonly marker: string;
  /** Unique per launch (absent in records written before launch ids existed: see launchIdOf). */
  readonly launchId?: string;
  /** Receives the Python driver's pid (the process to SIGTERM for a graceful stop). */
  readonly driverPidFile: string;
  /** Receives the exit code when the job ends on its own. */
  readonly exitFile: string;
  readonly logFile: string;
  readonly version: string;
  readonly startedAt: number;
  /** This launch's progress signing key (progress-signature.ts); absent for launches before signing existed. */
  readonly progressKey?: string;
  /** An upgrade's new version waits for its starting offsets in this file (handover.py). */
  readonly handoverFile?: string;
}

/**
 * A warm spare driver of the pool (driver-pool.ts), persisted in Redis so a restarted
 * orchestrator adopts or stops it. Once it takes a job it leaves the pool and becomes that
 * job's JobProcess (same group, marker and files); it never returns.
 */
export interface SpareProcess {
  /** Unique per spare; the launch id of the job it takes. */
  readonly spareId: string;
  /** What it is interchangeable for (launcher.ts poolKey). */
  readonly key: string;
  readonly groupPid: number;
  readonly marker: string;
  readonly driverPidFile: string;
  readonly exitFile: string;
  readonly logFile: string;
  /** Where the orchestrator writes the job's arguments. */
  readonly assignmentFile: string;
  /** Written by the driver once warmed up. */
  readonly readyFile: string;
  readonly startedAt: number;
  /** When the orchestrator first saw it ready; null while it warms up. */
  readonly readyAt: number | null;
}

/** Actual state of one job as the orchestrator last saw it; persisted in Redis. */
export interface JobRecord {
  readonly jobId: string;
  readonly usecase: string;
  readonly variant: string;
  readonly state: JobState;
  /** The deployment generation this record acts on. */
  readonly generation: number;
  readonly current: JobProcess | null;
  /** The new version while an upgrade overlaps the old one. */
  readonly next: JobProcess | null;
  /** Processes asked to stop (undeployed, or replaced by an upgrade) that have not exited yet. */
  readonly retiring: readonly { readonly job: JobProcess; readonly stopRequestedAt: number }[];
  /** Restarts after crashes since the last deploy. */
  readonly restarts: number;
  /** Times (ms) of recent crashes, for the crash-loop window. */
  readonly crashes: readonly number[];
  readonly nextStartAt: number | null;
  readonly lastError: string | null;
  /** Log file of the most recent process, kept after it ends. */
  readonly lastLogFile: string | null;
  /**
   * Consecutive exits caused by unreachable infrastructure (Kafka, the registry): restarted
   * with backoff, never counted as crashes; back to 0 once the job reports again.
   */
  readonly outages?: number;
  /** A version whose upgrade crash-looped while the old one kept serving; not retried until redeployed. */
  readonly blockedVersion?: string | null;
  /** An upgrade handed over at a batch boundary: when the old version was asked to stop, and when the new one was given its offsets. */
  readonly handover?: { readonly stopRequestedAt: number | null; readonly releasedAt: number | null; readonly offsets?: Record<string, number> } | null;
  /**
   * A backfill not reported done yet: every launch runs it before its stream (again after a
   * crash: the same feedback ids), reading the archive up to `historyBatch`, whose end offsets
   * the group was moved to.
   */
  readonly backfill?: { readonly since: number; readonly historyBatch: number; readonly offsets: Record<string, number> } | null;
  readonly updatedAt: number;
}

export interface SupervisionPolicy {
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly crashLoopMax: number;
  readonly crashWindowMs: number;
}

/** Delay before restart number `attempt` (1-based): exponential, capped, with ±20 % jitter. */
export function backoffDelayMs(attempt: number, policy: Pick<SupervisionPolicy, 'backoffInitialMs' | 'backoffMaxMs'>, random: () => number = Math.random): number {
  return sharedBackoffDelayMs(attempt, { initialMs: policy.backoffInitialMs, maxMs: policy.backoffMaxMs }, random);
}

/** The crash times still inside the window after adding `now`. */
export function recentCrashes(crashes: readonly number[], now: number, windowMs: number): number[] {
  return [...crashes, now].filter((at) => now - at < windowMs);
}

export type CrashDecision =
  | { readonly kind: 'restart'; readonly delayMs: number; readonly crashes: number[] }
  | { readonly kind: 'crash-looping'; readonly crashes: number[] };

/** What to do after a job's process died without being asked to. */
export function decideAfterCrash(record: Pick<JobRecord, 'crashes' | 'restarts'>, now: number, policy: SupervisionPolicy, random: () => number = Math.random): CrashDecision {
  const crashes = recentCrashes(record.crashes, now, policy.crashWindowMs);
  if (crashes.length >= policy.crashLoopMax) return { kind: 'crash-looping', crashes };
  // The first crash in the window restarts at once (a kill, an OOM: most never repeat); backoff
  // grows from the second, so a job that keeps failing still cannot spin.
  return { kind: 'restart', delayMs: crashes.length <= 1 ? 0 : backoffDelayMs(crashes.length - 1, policy, random), crashes };
}

/** The launch id of a process record (older records: the driver pid file's name). */
export function launchIdOf(job: Pick<JobProcess, 'launchId' | 'driverPidFile'>): string {
  return job.launchId ?? (job.driverPidFile.split('/').pop() ?? '').replace(/\.driver\.pid$/, '');
}

/** Every launch a record names: only these may run; any other process of the job is an orphan. */
export function namedLaunches(record: Pick<JobRecord, 'current' | 'next' | 'retiring'>): Set<string> {
  return new Set([record.current, record.next, ...record.retiring.map((entry) => entry.job)].filter((job): job is JobProcess => job !== null).map(launchIdOf));
}

/** Committed offsets of one topic, partition → next offset to read. */
export type PartitionOffsets = Readonly<Record<string, number>>;

/**
 * Merges reported end offsets into the committed ones, never moving a partition backwards.
 * Returns the partitions that advance (empty when nothing does).
 */
export function offsetsToAdvance(committed: PartitionOffsets, reported: PartitionOffsets): Record<string, number> {
  const advance: Record<string, number> = {};
  for (const [partition, offset] of Object.entries(reported)) {
    if (!Number.isSafeInteger(offset) || offset < 0) continue;
    const current = committed[partition];
    if (current === undefined || current < 0 || offset > current) advance[partition] = offset;
  }
  return advance;
}

/**
 * Spark's `startingOffsets` for a job: the committed offsets as JSON, with partitions that
 * have none starting at `fallback` (-2 = earliest, -1 = latest in Spark's JSON); the bare
 * fallback when nothing is committed at all.
 */
export function startingOffsetsArgument(topic: string, partitions: readonly number[], committed: PartitionOffsets, fallback: 'earliest' | 'latest'): string {
  const known = partitions.filter((p) => (committed[String(p)] ?? -1) >= 0);
  if (known.length === 0) return fallback;
  const missing = fallback === 'earliest' ? -2 : -1;
  const offsets = Object.fromEntries(partitions.map((p) => [String(p), (committed[String(p)] ?? -1) >= 0 ? committed[String(p)]! : missing]));
  return JSON.stringify({ [topic]: offsets });
}

/** `uc.<usecase>.<variant>`, optionally prefixed (tests isolate their groups this way). */
export function jobIdFor(usecase: string, variant: string, prefix = ''): string {
  return `${prefix}uc.${usecase}.${variant}`;
}

/** Sum over partitions of end − committed (a partition with nothing committed counts fully). */
export function lagOf(committed: PartitionOffsets, ends: PartitionOffsets, starts: PartitionOffsets = {}): number {
  let lag = 0;
  for (const [partition, end] of Object.entries(ends)) {
    const at = committed[partition];
    lag += Math.max(0, end - (at !== undefined && at >= 0 ? at : (starts[partition] ?? 0)));
  }
  return lag;
}

/** Lag of each partition (as `lagOf` sums it): the messages after the committed offset, or all of them before a first commit. */
export function partitionLag(committed: PartitionOffsets, ends: PartitionOffsets): Record<string, number> {
  return Object.fromEntries(Object.keys(ends).map((partition) => [partition, lagOf(committed, { [partition]: ends[partition] ?? 0 })]));
}

/** What the reconciler remembers about a running job's progress between ticks. */
export interface ProgressWatch {
  /** Sum of the committed offsets when they last moved (or when watching began). */
  readonly committed: number;
  readonly lag: number;
  /** When the committed offsets last moved (or watching began). */
  readonly since: number;
}

export type StallVerdict =
  | { readonly kind: 'ok'; readonly watch: ProgressWatch }
  | { readonly kind: 'stalled'; readonly watch: ProgressWatch; readonly reason: string };

/**
 * A live job is stalled when its committed offsets have not moved for `timeoutMs` while
 * there is input waiting for it that is not shrinking (a job with nothing to read is idle,
 * not stalled). Any advance restarts the clock.
 */
export function watchProgress(previous: ProgressWatch | null, committed: number, lag: number, now: number, timeoutMs: number): StallVerdict {
  if (!previous || committed !== previous.committed || lag === 0) return { kind: 'ok', watch: { committed, lag, since: now } };
  const watch = { ...previous, lag: Math.max(previous.lag, lag) };
  if (now - previous.since >= timeoutMs && lag >= previous.lag) {
    const seconds = Math.round((now - previous.since) / 1000);
    return { kind: 'stalled', watch, reason: `stalled: committed offsets have not advanced for ${seconds} s while ${lag} records wait (lag was ${previous.lag})` };
  }
  return { kind: 'ok', watch };
}
