/**
 * What the CLI does against the orchestrator's state: validate and deploy a use case
 * folder, undeploy it, and report status (with committed offsets and lag from Kafka).
 * The running orchestrator picks changes up on its next tick.
 */
import { join, resolve } from 'node:path';
import type { Admin } from 'kafkajs';
import { parseMemoryMb, type DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { archivedBoundary } from './history-boundary.ts';
import { endOffsetsIfExists, readJobOffsets } from './offsets.ts';
import type { EventPublisher } from './events.ts';
import { jobIdFor, lagOf, type Deployment, type DeploymentSettings, type JobState } from './state.ts';
import type { DeploymentStore } from './store.ts';
import { admit, spareReservation } from './admission.ts';
import { assertUnderUsecaseRoots } from './usecase-roots.ts';
import { validateUsecase, type ValidationOptions } from './validation.ts';
import { timestampIso } from './run-params.ts';
import { nearestRank } from './alert-rules.ts';
import type { RolloutStore, Weights } from '../../shared/rollout-weights.ts';

export function resolveUsecaseFolder(config: DiamondConfig, usecase: string, dir?: string): string {
  return resolve(dir ?? join(config.projectRoot, 'usecases', usecase));
}

export interface DeployRequest {
  readonly usecase: string;
  readonly variant: string;
  readonly folder: string;
  readonly settings?: DeploymentSettings;
  /**
   * `diamond deploy --from`: the job (re)starts at the input's offsets of this time (ISO-8601,
   * or a duration back such as 7d) — a replay requested right after the deployment is stored.
   */
  readonly from?: string;
}

/**
 * Validates, then records the desired state. A changed folder means a new version: an upgrade.
 * With `from`, the job then processes its input from that time (replayUsecase): a new job
 * starts there, a running one is stopped after its batch and restarted there.
 */
export async function deployUsecase(config: DiamondConfig, store: DeploymentStore, events: EventPublisher | null, request: DeployRequest, jobPrefix = '', validation: ValidationOptions = {}): Promise<Deployment> {
  assertUnderUsecaseRoots(config, request.folder); // before any of its code is installed or imported
  const from = request.from === undefined ? null : pastTime(request.from, 'from');
  const validated = await validateUsecase(config, request.folder, request.variant, validation);
  if (validated.name !== request.usecase) {
    throw new DiamondError(`${request.folder}/usecase.yaml names "${validated.name}", not "${request.usecase}"`, { code: 'DIAMOND_USECASE_INVALID', hint: 'make the manifest name equal the folder name' });
  }
  const others = (await store.listDeployments()).filter((d) => !(d.usecase === request.usecase && d.variant === request.variant));
  const spares = spareReservation(config.orchestrator.poolSize, parseMemoryMb('DIAMOND_SPARK_DRIVER_MEMORY', config.spark.driverMemory));
  const admission = admit({ usecase: request.usecase, variant: request.variant, resources: validated.resources }, others, config.orchestrator.budget, spares);
  if (!admission.admitted) {
    throw new DiamondError(`refused to deploy: ${admission.reason}`, {
      code: 'DIAMOND_OVER_BUDGET',
      hint: 'undeploy a job, lower `resources` in usecase.yaml, or raise DIAMOND_ORCHESTRATOR_BUDGET_CORES / _BUDGET_MEMORY / _OVERCOMMIT',
    });
  }
  const deployment = await store.putDeployment({
    usecase: request.usecase, variant: request.variant, folder: request.folder, version: validated.version, stateful: validated.stateful,
    settings: request.settings, resources: validated.resources, pythonEnv: validated.pythonEnv,
  });
  await events?.publish('deployed', { job: jobIdFor(request.usecase, request.variant, jobPrefix), usecase: request.usecase, variant: request.variant, version: deployment.version, generation: deployment.generation });
  // Level-based: a tick that already started the new job stops it again and moves its group.
  if (from !== null) await replayUsecase(store, events, { usecase: request.usecase, variant: request.variant, since: from }, jobPrefix);
  return deployment;
}

/** An ISO-8601 time or a duration back (7d, 12h, 30m) → ISO, refused when in the future. */
function pastTime(text: string, name: string): string {
  const iso = timestampIso(text, Date.now());
  if (iso === null) throw new DiamondError(`${name} "${text}" is not a time`, { code: 'DIAMOND_BAD_REQUEST', hint: 'give an ISO-8601 time such as 2026-11-22T10:00:00Z, or a duration back such as 7d or 12h' });
  if (Date.parse(iso) > Date.now()) throw new DiamondError(`${name} ${text} is in the future`, { code: 'DIAMOND_BAD_REQUEST', hint: 'give a time in the past' });
  return iso;
}

export async function undeployUsecase(store: DeploymentStore, events: EventPublisher | null, usecase: string, variant: string, jobPrefix = ''): Promise<boolean> {
  const removed = await store.removeDeployment(usecase, variant);
  if (removed) await events?.publish('undeployed', { job: jobIdFor(usecase, variant, jobPrefix), usecase, variant });
  return removed;
}

/**
 * Asks the orchestrator to reprocess a deployed job's input from `since` (Kafka record
 * time): it stops the job after its batch, moves the group back, and starts it again.
 */
export async function replayUsecase(store: DeploymentStore, events: EventPublisher | null, request: { usecase: string; variant: string; since: string }, jobPrefix = ''): Promise<{ job: string; since: string }> {
  const since = Date.parse(pastTime(request.since, '--since'));
  if (!(await store.getDeployment(request.usecase, request.variant))) {
    throw new DiamondError(`${request.usecase} variant ${request.variant} is not deployed`, { code: 'DIAMOND_NOT_DEPLOYED', hint: 'see what runs with `npx diamond status`' });
  }
  const job = jobIdFor(request.usecase, request.variant, jobPrefix);
  await store.requestReplay(job, { since, requestedAt: Date.now() });
  const iso = new Date(since).toISOString();
  await events?.publish('replay-requested', { job, usecase: request.usecase, variant: request.variant, since: iso });
  return { job, since: iso };
}

/** Where a backfill reads: the archive's checkpoint, or why there is none. */
export interface BackfillSource {
  /** The archiver's checkpoint of the records topic; null when this orchestrator runs no archiver. */
  readonly recordsCheckpoint: string | null;
  readonly inputTopic: string;
}

/**
 * `diamond backfill`: the job stops after its batch, its group moves to where the archived
 * history ends, and it runs its transform over the history since `since` before its stream
 * goes on from there (reconciler, backfill.py). Refused before anything is stored when the use
 * case is not deployed, is stateful (its windows live in the stream's checkpoint, not in a
 * batch), or the archive holds nothing yet.
 */
export async function backfillUsecase(store: DeploymentStore, events: EventPublisher | null, request: { usecase: string; variant: string; since: string }, source: BackfillSource, jobPrefix = ''): Promise<{ job: string; since: string; historyBatch: number; offsets: Record<string, number> }> {
  const since = Date.parse(pastTime(request.since, '--since'));
  const deployment = await store.getDeployment(request.usecase, request.variant);
  if (!deployment) {
    throw new DiamondError(`${request.usecase} variant ${request.variant} is not deployed`, { code: 'DIAMOND_NOT_DEPLOYED', hint: 'deploy it first (`npx diamond deploy <usecase>`); a backfill then runs it over the history' });
  }
  if (deployment.stateful) {
    throw new DiamondError(`${request.usecase} is stateful: its windows live in its stream's checkpoint, so a batch over the history cannot give the stream's feedback`, { code: 'DIAMOND_BACKFILL_STATEFUL', hint: `reprocess it from a time with \`npx diamond replay ${request.usecase} --since <time>\` (Kafka keeps DIAMOND_RECORDS_RETENTION)` });
  }
  const boundary = source.recordsCheckpoint === null ? null : archivedBoundary(source.recordsCheckpoint, source.inputTopic);
  if (!boundary) {
    throw new DiamondError(source.recordsCheckpoint === null ? 'no history archive runs here, so there is no history to backfill from' : 'the history archive has not committed any records yet', {
      code: 'DIAMOND_HISTORY_UNAVAILABLE',
      hint: 'turn on DIAMOND_HISTORY_ARCHIVE=1 and see `npx diamond status` (history archive: running); or reprocess from Kafka with `npx diamond replay`',
    });
  }
  const job = jobIdFor(request.usecase, request.variant, jobPrefix);
  await store.requestReplay(job, { since, requestedAt: Date.now(), backfill: true });
  const iso = new Date(since).toISOString();
  await events?.publish('backfill-requested', { job, usecase: request.usecase, variant: request.variant, since: iso });
  return { job, since: iso, historyBatch: boundary.batch, offsets: boundary.offsets };
}

/**
 * The id a use case's own events carry (rollout-changed): its jobs' ids without the variant,
 * also the message key, so one use case's changes stay in order on one partition.
 */
export function usecaseEventId(usecase: string, jobPrefix = ''): string {
  return `${jobPrefix}uc.${usecase}`;
}

/**
 * Sets a use case's A/B weights and publishes rollout-changed, for every way to change them
 * (the control API and so the dashboard, `diamond rollout`). The weights are stored first:
 * the writer applies them from its next batch whatever happens to the event; a failed publish
 * throws, and setting the same weights again publishes it.
 */
export async function changeRollout(rollouts: RolloutStore, events: EventPublisher, request: { usecase: string; weights: Weights; by: string }, jobPrefix = ''): Promise<{ before: Weights | null; after: Weights }> {
  const before = await rollouts.get(request.usecase);
  await rollouts.set(request.usecase, request.weights);
  await events.publish('rollout-changed', { job: usecaseEventId(request.usecase, jobPrefix), usecase: request.usecase, variant: '*', weights: request.weights, before, by: request.by });
  return { before, after: request.weights };
}

export interface JobStatus {
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  readonly deployedVersion: string | null;
  readonly version: string | null;
  readonly state: JobState | 'pending';
  readonly pid: number | null;
  readonly restarts: number;
  /** Consecutive exits caused by unreachable infrastructure (restarted with backoff, not counted as crashes). */
  readonly outages: number;
  readonly committedOffsets: Record<string, number>;
  readonly lag: number | null;
  /** Records per second of the last batch (from the job's progress reports). */
  readonly recordsPerSecond: number | null;
  /** Cores in use by the job's process tree at the last sample. */
  readonly cpu: number | null;
  readonly memoryMb: number | null;
  readonly lastBatchAt: string | null;
  /** Duration (Spark's triggerExecution) and input rows of the last batch. */
  readonly batchDurationMs: number | null;
  readonly batchRows: number | null;
  /**
   * The job's processing latency: nearest-rank p50 and p99 of the durations of its latest
   * batches (at most LATENCY_BATCHES; Spark's triggerExecution from its progress reports), null
   * before its first. A record also waits for its batch to start (up to one trigger interval);
   * ingest → Cassandra row per use case and variant is downstream's diamond_feedback_end_to_end_seconds.
   */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly batches: number } | null;
  readonly lastError: string | null;
  readonly logFile: string | null;
  /** The running launch's Spark UI (DIAMOND_SPARK_UI), null when none runs. */
  readonly sparkUi: string | null;
}

/** p50/p99 of a job's latest batch durations, null before its first. */
export function latencyOf(durationsMs: readonly number[]): JobStatus['latencyMs'] {
  if (durationsMs.length === 0) return null;
  return { p50: Math.round(nearestRank(durationsMs, 0.5)), p99: Math.round(nearestRank(durationsMs, 0.99)), batches: durationsMs.length };
}

export async function jobStatuses(store: DeploymentStore, admin: Admin, inputTopic: string, jobPrefix = ''): Promise<JobStatus[]> {
  const deployments = await store.listDeployments();
  const records = new Map((await store.listJobs()).map((r) => [r.jobId, r]));
  const ends = await endOffsetsIfExists(admin, inputTopic).catch(() => null);
  const jobIds = new Set([...deployments.map((d) => jobIdFor(d.usecase, d.variant, jobPrefix)), ...records.keys()]);
  const rows: JobStatus[] = [];
  for (const job of [...jobIds].sort()) {
    const record = records.get(job);
    const deployment = deployments.find((d) => jobIdFor(d.usecase, d.variant, jobPrefix) === job);
    const metrics = await store.jobMetrics(job);
    const live = record?.current !== null && record?.current !== undefined;
    const committed = ends === null ? {} : Object.fromEntries(Object.entries(await readJobOffsets(admin, job, inputTopic).catch(() => ({}))).filter(([, offset]) => offset >= 0));
    rows.push({
      job,
      usecase: record?.usecase ?? deployment?.usecase ?? '',
      variant: record?.variant ?? deployment?.variant ?? '',
      deployedVersion: deployment?.version ?? null,
      version: record?.current?.version ?? null,
      state: record?.state ?? 'pending',
      pid: record?.current?.groupPid ?? null,
      restarts: record?.restarts ?? 0,
      outages: record?.outages ?? 0,
      committedOffsets: committed,
      lag: ends ? lagOf(committed, ends) : null,
      recordsPerSecond: live && metrics.recordsPerSecond !== undefined && metrics.recordsPerSecond !== null ? Math.round(metrics.recordsPerSecond) : null,
      cpu: live ? (metrics.cpu ?? null) : null,
      memoryMb: live ? (metrics.memoryMb ?? null) : null,
      lastBatchAt: metrics.lastBatchAt ? new Date(metrics.lastBatchAt).toISOString() : null,
      batchDurationMs: metrics.batchDurationMs ?? null,
      batchRows: metrics.batchRows ?? null,
      latencyMs: latencyOf(await store.recentBatchDurations(job)),
      lastError: record?.lastError ?? null,
      logFile: record?.lastLogFile ?? null,
      sparkUi: live ? (metrics.sparkUiUrl ?? null) : null,
    });
  }
  return rows;
}
