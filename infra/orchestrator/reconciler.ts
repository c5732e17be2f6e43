/**
 * The orchestrator: a level-based reconcile loop. Each tick reads the desired state
 * (deployments, pending replays) and the stored actual state (job records) from Redis,
 * observes the processes, and switches on each job's state to one small handler. Handlers
 * are idempotent: running a tick twice, or after an orchestrator restart, does the same
 * thing, which is also how still-running jobs are adopted (their records name a live
 * process group). Only the holder of the leader lease (lease.ts) acts; progress reports
 * are committed alongside by progress-ingest.ts.
 *
 *                   first report                     new version (stateless)
 *   deploy ─► starting ─────────────► running ────────────────────────────► upgrading
 *               ▲  │ crash, or no       │  │ crash, stall, or new version     │ new one reports: promote it,
 *               │  │ report in time     │  │ of a stateful job (stop first)   │   stop the old → running
 *               │  ▼                    ▼  ▼                                  │ new one crashes: old keeps
 *               └── backoff ◄───────────────────────────────────────────────┘   serving → running / backoff
 *     delay over     │ too many crashes in the window
 *                    ▼
 *               crash-looping ── redeploy ──► backoff
 *
 *   replay requested (any state) ─► replaying ─ old processes gone, group moved back ─► starting
 *   undeployed (any state) ─► stopped ─ deployed again ─► starting
 *   exit caused by an outage (Kafka, registry unreachable) ─► backoff, never counted as a crash
 *
 * A job is its whole process tree. Every launch carries a marker (launcher.ts); each tick
 * the leader scans /proc for marked processes, and any the job's record does not name (the
 * remains of a dead group leader, a launch interrupted before its record was written, an
 * older orchestrator's leftovers) is stopped: SIGTERM, SIGKILL after the reap grace. A job
 * with such processes still alive is not reconciled, so nothing restarts beside them.
 * Job records and launch intents are written fenced by the lease's token (lease.ts).
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { DiamondConfig } from '../../shared/config.ts';
import { errorMessage, LeaseLostError } from '../../shared/errors.ts';
import { createKafka, ensureTopics } from '../../shared/kafka.ts';
import type { Logger } from '../../shared/logger.ts';
import { signalAll } from '../../shared/process-group.ts';
import { AlertEvaluator } from './alert-evaluator.ts';
import { firingByRule, RecentBatches } from './alert-rules.ts';
import { describeJobEnd } from './exit-description.ts';
import { createRedis } from '../../shared/redis.ts';
import type { LifecycleEventFields } from '../../shared/messages.ts';
import { EventPublisher, LifecycleEvents, type LifecycleEvent } from './events.ts';
import { DriverPool } from './driver-pool.ts';
import { HistoryArchive } from './history-archive.ts';
import { JobLauncher, POOL_DIR, type MarkedProcess } from './launcher.ts';
import { LeaderLease } from './lease.ts';
import { EXIT_OUTAGE, KafkaHealth } from './outage.ts';
import { archivedBoundary, recordsCheckpointOf, type ArchivedBoundary } from './history-boundary.ts';
import { GroupNotEmptyError, readJobOffsets, setGroupOffsets, startingOffsetsFor, topicEndOffsets } from './offsets.ts';
import type { OrchestratorOptions } from './options.ts';
import { OrchestratorMetrics } from './orchestrator-metrics.ts';
import { ProgressIngest } from './progress-ingest.ts';
import { backoffDelayMs, decideAfterCrash, jobIdFor, lagOf, launchIdOf, namedLaunches, watchProgress, type Deployment, type JobProcess, type JobRecord, type ProgressWatch, type SupervisionPolicy } from './state.ts';
import { DeploymentStore, type ReplayRequest } from './store.ts';
import { UsageSampler } from './usage-sampler.ts';
import { WebhookNotifier } from './webhook-notifier.ts';

/** How often the death watch looks for a tracked job process that is gone. */
const DEATH_WATCH_MS = 100;

export class Reconciler {
  readonly id = `orchestrator-${randomUUID().slice(0, 8)}`;
  readonly store: DeploymentStore;
  private readonly redis: Redis;
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private readonly producer: Producer;
  private readonly events: EventPublisher;
  private readonly launcher: JobLauncher;
  private readonly policy: SupervisionPolicy;
  private readonly lease: LeaderLease;
  private readonly progress: ProgressIngest;
  private readonly usage: UsageSampler;
  private readonly webhooks: WebhookNotifier;
  private readonly alerts: AlertEvaluator;
  private readonly pool: DriverPool;
  /** The history archiver the leader keeps running; null when off (config, or options without its folder). */
  readonly historyArchive: HistoryArchive | null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly adopted = new Set<string>();
  /** Per live process group: committed offsets and lag when they last moved (stall detection). */
  private readonly watches = new Map<number, ProgressWatch>();
  /** End offsets of the input topic, read once per tick. */
  private inputEnds: Record<string, number> | null = null;
  /** When the orchestrator itself last failed to reach Kafka (job failures meanwhile are outages). */
  private readonly kafkaHealth = new KafkaHealth();
  /** Orphaned launches (marked processes no record names) → when they were first asked to stop. */
  private readonly orphans = new Map<string, number>();
  /** Per job, the processes its record names as running (current, next): the death watch's list. */
  private readonly tracked = new Map<string, JobProcess[]>();
  /** Launches the death watch saw gone (it wakes the loop once per launch, not every 100 ms). */
  private readonly deathsSeen = new Set<string>();
  /** Per job in backoff, when it may start: the loop wakes then instead of at the next tick. */
  private readonly dueAt = new Map<string, number>();
  /** Per job launched whose first batch has not been reported yet, its launch time: the pool's refill waits for them. */
  private readonly launching = new Map<string, number>();
  private lastEarlyWake: number | null = null;

  constructor(
    private readonly config: DiamondConfig,
    private readonly options: OrchestratorOptions,
    private readonly log: Logger,
    /** Restarts and batches (default: a registry of its own; `serve orchestrator` shares the control API's). */
    readonly metrics: OrchestratorMetrics = new OrchestratorMetrics(),
  ) {
    this.redis = createRedis(config, { keyPrefix: options.keyPrefix });
    this.store = new DeploymentStore(this.redis);
    this.kafka = createKafka(config, { clientId: `${config.kafka.clientId}-orchestrator`, logger: log });
    this.admin = this.kafka.admin();
    this.producer = this.kafka.producer({ idempotent: true });
    this.events = new EventPublisher(this.producer, options.topics.events);
    this.launcher = new JobLauncher(config, options.topics, { jobs: options.jobsDir, checkpoints: options.checkpointsDir }, log);
    this.policy = config.orchestrator;
    this.lease = new LeaderLease(this.store, this.id, config.orchestrator.leaseMs);
    const batches = new RecentBatches(config.alerts.batchP99WindowMs);
    this.progress = new ProgressIngest(this.kafka, this.admin, this.store, options, log, metrics, batches);
    this.usage = new UsageSampler(this.store);
    this.webhooks = new WebhookNotifier(config.alerts.webhooks, { timeoutMs: config.alerts.webhookTimeoutMs, retries: config.alerts.webhookRetries }, log.child({ component: 'alert-webhooks' }));
    this.alerts = new AlertEvaluator({
      settings: config.alerts, policy: config.orchestrator, store: this.store, admin: this.admin, inputTopic: options.topics.input, jobPrefix: options.jobPrefix,
      events: this.events, webhooks: this.webhooks, batches, log: log.child({ component: 'alerts' }),
    });
    metrics.watchAlerts(async () => firingByRule((await this.store.alertStatuses()).values()));
    this.pool = new DriverPool(config, this.launcher, this.store, log);
    this.historyArchive = config.history.archive && options.historyArchiveDir
      ? new HistoryArchive(config, this.launcher, this.admin, {
        dir: options.historyArchiveDir,
        topics: { records: options.topics.input, feedback: options.topics.output, recordsSubject: options.topics.recordsSubject, feedbackSubject: options.topics.feedbackSubject },
      }, log.child({ component: 'history-archive' }), (status) => this.store.putHistoryArchiveStatus(status))
      : null;
  }

  get isLeader(): boolean {
    return this.lease.isHeld;
  }

  async connect(): Promise<void> {
    await this.redis.connect();
    await this.admin.connect();
    await this.producer.connect();
    await ensureTopics(this.admin, [{ topic: this.options.topics.progress, partitions: 1 }, { topic: this.options.topics.events, partitions: 1 }]);
  }

  /** Runs until `stop()`: acquire or renew the lease, then reconcile, every tick. */
  async run(): Promise<void> {
    const interval = Math.min(this.config.orchestrator.tickMs, Math.floor(this.config.orchestrator.leaseMs / 3));
    const keepAlive = setInterval(() => {
      if (this.stopped) return;
      this.lease.keepAlive().catch((error: unknown) => this.log.warn({ error: errorMessage(error) }, 'could not extend the leader lease'));
    }, Math.max(100, Math.floor(this.config.orchestrator.leaseMs / 3)));
    keepAlive.unref(); // never what keeps a stopping process alive
    // A tick a second would see a dead job up to a second late: a /proc check every 100 ms
    // (one stat per tracked process) wakes the loop as soon as one is gone.
    const deathWatch = setInterval(() => this.watchDeaths(), DEATH_WATCH_MS);
    deathWatch.unref();
    this.stopKeepAlive = () => {
      clearInterval(keepAlive);
      clearInterval(deathWatch);
    };
    try {
      await this.loop(interval);
    } finally {
      this.stopKeepAlive();
    }
  }

  private stopKeepAlive: () => void = () => undefined;

  private async loop(interval: number): Promise<void> {
    while (!this.stopped) {
      try {
        if (await this.lead()) await this.tick();
      } catch (error) {
        if (error instanceof LeaseLostError) await this.stepDown(error);
        else this.log.error({ err: error }, 'reconcile failed; retrying next tick');
      }
      if (this.stopped) break;
      const wait = this.untilNextTick(interval, Date.now());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
    }
  }

  /** Wakes the loop when a process a record names as running is gone (once per launch). */
  private watchDeaths(): void {
    if (this.stopped || !this.lease.isHeld) return;
    for (const jobs of this.tracked.values()) {
      for (const job of jobs) {
        const launch = launchIdOf(job);
        if (this.deathsSeen.has(launch) || this.launcher.isRunning(job)) continue;
        this.deathsSeen.add(launch);
        this.wake?.();
        return;
      }
    }
  }

  /** The tick interval, or less when a job in backoff is due sooner (a first crash restarts at once). */
  private untilNextTick(interval: number, now: number): number {
    if (this.dueAt.size === 0) return interval;
    const due = Math.min(...this.dueAt.values());
    // Once per due time: a job that stays in backoff past it (a stateful job waiting for its
    // old process) is looked at again on the normal tick, not in a tight loop.
    if (due === this.lastEarlyWake || due >= now + interval) return interval;
    this.lastEarlyWake = due;
    return Math.max(0, due - now);
  }

  /** Stops supervising (the jobs keep running; the next orchestrator adopts them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopKeepAlive();
    this.wake?.();
    await this.historyArchive?.stop(); // unlike jobs: the next leader starts its own (or adopts it, when it is killed first)
    await this.progress.stop();
    await this.webhooks.close();
    await this.lease.release();
    await this.producer.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
    this.redis.disconnect();
  }

  /**
   * One round of the lease (run() does it every tick): says whether this orchestrator leads.
   * The leader ingests progress; a follower must not (it would commit on a stale view).
   */
  async lead(): Promise<boolean> {
    const change = await this.lease.renew();
    if (change === 'acquired') {
      this.log.info({ orchestrator: this.id, fence: this.lease.fence }, 'leader lease acquired; supervising jobs');
      await this.progress.start();
      this.historyArchive?.start(); // one archiver per platform: the leader's
    } else if (change === 'lost') {
      this.log.warn({ orchestrator: this.id }, 'leader lease lost; no longer supervising');
      await this.progress.stop();
      await this.historyArchive?.stop();
    }
    return this.lease.isHeld;
  }

  /** A fenced write was refused: another orchestrator leads now; stop acting on a stale view. */
  private async stepDown(error: LeaseLostError): Promise<void> {
    this.log.warn({ orchestrator: this.id, err: error }, 'a write was refused because the lease moved on; stepping down');
    this.lease.lost();
    await this.progress.stop();
    await this.historyArchive?.stop();
  }

  /** One pass over every job that is desired or still has a record. */
  async tick(now = Date.now()): Promise<void> {
    const deployments = new Map((await this.store.listDeployments()).map((d) => [jobIdFor(d.usecase, d.variant, this.options.jobPrefix), d]));
    const records = new Map((await this.store.listJobs()).map((r) => [r.jobId, r]));
    const replays = await this.store.pendingReplays();
    this.inputEnds = await topicEndOffsets(this.admin, this.options.topics.input).then((ends) => {
      this.kafkaHealth.observe(null, now);
      return ends;
    }, (error: unknown) => {
      this.kafkaHealth.observe(error, now);
      return null;
    });
    await this.usage.sample([...records.values()], now);
    await this.pool.load(); // before the /proc scan: inherited spares are not orphans
    const orphaned = this.reapOrphans(records, now);
    for (const jobId of [...this.tracked.keys(), ...this.dueAt.keys()]) {
      if (records.has(jobId) || deployments.has(jobId)) continue;
      this.tracked.delete(jobId);
      this.dueAt.delete(jobId);
      this.launching.delete(jobId);
    }
    for (const jobId of new Set([...deployments.keys(), ...records.keys()])) {
      if (orphaned.has(jobId)) continue; // its strays are being stopped; nothing starts beside them
      try {
        await this.reconcile(jobId, deployments.get(jobId) ?? null, records.get(jobId) ?? null, replays.get(jobId) ?? null, now);
      } catch (error) {
        if (error instanceof LeaseLostError) return this.stepDown(error); // the rest of this view is stale too
        this.log.error({ job: jobId, err: error }, 'reconciling the job failed; retrying next tick');
      }
    }
    // After the jobs, which may just have taken a spare: the pool refills in the background.
    try {
      for (const [jobId, startedAt] of this.launching) {
        if (((await this.store.jobMetrics(jobId)).lastBatchAt ?? 0) >= startedAt) this.launching.delete(jobId);
      }
      await this.pool.refill(this.lease.fence, now, this.launching.size > 0);
    } catch (error) {
      if (error instanceof LeaseLostError) return this.stepDown(error);
      this.log.error({ err: error }, 'refilling the driver pool failed; retrying next tick');
    }
    await this.alerts.maybeEvaluate(now); // after the pass, on the states it saved; throttled, never throws
  }

  /**
   * Stops every marked process that no record names (SIGTERM, SIGKILL after the reap grace)
   * and returns the jobs that still have such processes alive.
   */
  private reapOrphans(records: ReadonlyMap<string, JobRecord>, now: number): Set<string> {
    const byLaunch = new Map<string, MarkedProcess[]>();
    for (const found of this.launcher.jobProcesses()) {
      if (found.jobId === POOL_DIR && this.pool.has(found.launchId)) continue; // a spare waiting for a job
      const record = records.get(found.jobId);
      if (record && namedLaunches(record).has(found.launchId)) continue;
      byLaunch.set(found.launchId, [...(byLaunch.get(found.launchId) ?? []), found]);
    }
    for (const launchId of this.orphans.keys()) if (!byLaunch.has(launchId)) this.orphans.delete(launchId);
    const jobs = new Set<string>();
    for (const [launchId, processes] of byLaunch) {
      const jobId = processes[0]!.jobId;
      jobs.add(jobId);
      const since = this.orphans.get(launchId);
      const pids = processes.map((p) => p.pid);
      if (since === undefined) {
        this.log.warn({ job: jobId, launch: launchId, pids }, 'job processes no record names (orphans); stopping them before the job runs again');
        this.orphans.set(launchId, now);
        signalAll(processes.map((p) => p.pgid), pids, 'SIGTERM');
      } else if (now - since >= this.config.orchestrator.reapGraceMs) {
        this.log.warn({ job: jobId, launch: launchId, pids }, 'orphaned job processes did not stop after SIGTERM; killing them');
        signalAll(processes.map((p) => p.pgid), pids, 'SIGKILL');
      }
    }
    return jobs;
  }

  private async reconcile(jobId: string, desired: Deployment | null, found: JobRecord | null, replay: ReplayRequest | null, now: number): Promise<void> {
    let record = found;
    if (record) record = await this.retireDead(await this.adopt(record));
    if (!desired) {
      if (record) await this.save(await this.reconcileUndeployed(record), found);
      return;
    }
    if (!record) {
      await this.save(await this.startJob(newRecord(jobId, desired, now), desired, LifecycleEvents.STARTING), null);
      return;
    }
    if (record.generation !== desired.generation) record = redeployed(record, desired, now);
    // Level-based: while a replay is pending the job is replaying, whatever it was doing.
    if (replay && record.state !== 'replaying') record = { ...record, state: 'replaying' };
    await this.save(await this.reconcileState(record, desired, replay, now), found);
  }

  /** The state switch: one handler per state, each returns the new record (or the same one). */
  private async reconcileState(record: JobRecord, desired: Deployment, replay: ReplayRequest | null, now: number): Promise<JobRecord> {
    switch (record.state) {
      case 'starting': return this.reconcileStarting(record, desired, now);
      case 'running': return this.reconcileRunning(record, desired, now);
      case 'upgrading': return this.reconcileUpgrading(record, desired, now);
      case 'backoff': return this.reconcileBackoff(record, desired, now);
      case 'replaying': return this.reconcileReplaying(record, desired, replay, now);
      case 'crash-looping': return this.reconcileCrashLooping(record);
      case 'stopped': return this.reconcileStopped(record, desired);
    }
  }

  /** Launched, not reported yet: running at its first report, stalled past the start timeout. */
  private async reconcileStarting(record: JobRecord, desired: Deployment, now: number): Promise<JobRecord> {
    const current = record.current;
    if (!current || !this.launcher.isRunning(current)) return this.crashed(await this.retireDead(record), current, now);
    const upgrade = await this.upgradeIfOutdated(record, current, desired, now);
    if (upgrade) return upgrade;
    if ((await this.store.reportedAt(record.jobId, current.version) ?? 0) >= current.startedAt) {
      await this.emit(LifecycleEvents.RUNNING, record, { version: current.version, pid: this.launcher.driverPid(current) });
      return { ...record, state: 'running', outages: 0 };
    }
    if (now - current.startedAt > this.config.orchestrator.startTimeoutMs) {
      const seconds = Math.round((now - current.startedAt) / 1000);
      return this.stalled(record, current, `stalled: never reported in the ${seconds} s since its launch (see its log)`, now);
    }
    return this.retireDead(record);
  }

  /** Reporting: watched for a crash, a stall and a new version to upgrade to. */
  private async reconcileRunning(record: JobRecord, desired: Deployment, now: number): Promise<JobRecord> {
    const current = record.current;
    if (!current || !this.launcher.isRunning(current)) return this.crashed(await this.retireDead(record), current, now);
    const upgrade = await this.upgradeIfOutdated(record, current, desired, now);
    if (upgrade) return upgrade;
    const backfill = await this.watchBackfill(record, current, now);
    if (backfill === 'stalled') return this.stalled(record, current, 'stalled: its backfill has not reported within DIAMOND_ORCHESTRATOR_STALL_TIMEOUT', now);
    if (backfill !== null && backfill.backfill) return this.retireDead(backfill);
    const stalled = await this.checkStalled(record.jobId, current, now);
    if (stalled) return this.stalled(record, current, stalled, now);
    return this.retireDead(backfill ?? record);
  }

  /** Two versions overlap (stateless jobs): promote the new one once it reports. */
  private async reconcileUpgrading(record: JobRecord, desired: Deployment, now: number): Promise<JobRecord> {
    const { current, next } = record;
    if (!next) return { ...record, state: current ? 'running' : 'backoff' };
    if (next.version !== desired.version) {
      // Deployed again mid-upgrade: drop the half-started version; the running handler starts the newest.
      return this.retire({ ...record, state: 'running', next: null, handover: null }, next);
    }
    if (!this.launcher.isRunning(next)) {
      // The new version died; the old one keeps running. Retry the upgrade after the
      // backoff, or stop trying (crash-looping) and leave the old version serving.
      const failed = await this.crashed({ ...record, next: null, current: next, handover: null }, next, now);
      const oldAlive = current !== null && this.launcher.isRunning(current);
      if (failed.state === 'crash-looping' && oldAlive) {
        // Keep supervising the old version; the failed one is not tried again until redeployed.
        return { ...failed, state: 'running', current, blockedVersion: next.version, lastLogFile: next.logFile };
      }
      const state = failed.state === 'crash-looping' ? 'crash-looping' : oldAlive ? 'running' : 'backoff';
      return { ...failed, state, current: oldAlive ? current : null, lastLogFile: next.logFile };
    }
    if (next.handoverFile && !record.handover?.releasedAt) return this.handOver(record, current, next, desired);
    const reportedAt = await this.store.reportedAt(record.jobId, next.version) ?? 0;
    const handover = record.handover?.releasedAt ? record.handover : null;
    // Handed over: promoted once the new version's query started at the boundary (the old one is gone).
    if (handover ? reportedAt >= handover.releasedAt! : reportedAt >= next.startedAt || !current || !this.launcher.isRunning(current)) {
      const asked = handover?.stopRequestedAt ?? handover?.releasedAt ?? 0;
      const boundary = handover ? { offsets: handover.offsets ?? {}, pauseMs: Math.max(0, reportedAt - asked), drainMs: Math.max(0, handover.releasedAt! - asked) } : {};
      await this.emit(LifecycleEvents.RUNNING, record, { version: next.version, pid: this.launcher.driverPid(next), upgradedFrom: current?.version, ...boundary });
      const promoted: JobRecord = { ...record, state: 'running', current: next, next: null, nextStartAt: null, handover: null };
      return current ? this.retire(promoted, current) : promoted;
    }
    return record;
  }

  /**
   * An exact-boundary upgrade: the new version is warm and waits; the old one stops after its
   * batch (finishing one its stop caught); once its stopped report is in, everything it
   * processed is committed, and those offsets are where the new one starts. No record is
   * processed by both versions, none by neither. An old version that died instead (a crash,
   * kill -9) may have written part of a batch it never reported: that is replayed, as after any crash.
   */
  private async handOver(record: JobRecord, current: JobProcess | null, next: JobProcess, desired: Deployment): Promise<JobRecord> {
    const handover = record.handover ?? { stopRequestedAt: null, releasedAt: null };
    if (!this.launcher.isWaitingForHandover(next)) return record; // still warming up and loading the code
    const alive = current !== null && this.launcher.isRunning(current);
    if (handover.stopRequestedAt === null && alive) {
      this.launcher.requestStop(current);
      this.log.info({ job: record.jobId, from: current.version, to: next.version }, 'handing over: the new version is ready, the old one stops after its batch');
      return { ...record, handover: { ...handover, stopRequestedAt: Date.now() } };
    }
    const stopRequestedAt = handover.stopRequestedAt ?? Date.now();
    // Its stopped report is behind every batch it reported (one partition per job), so once
    // it is consumed they are all committed; the process may still be shutting Spark down.
    const stoppedAt = current ? await this.store.stoppedAt(record.jobId, current.version) : null;
    if (current && (stoppedAt ?? 0) < stopRequestedAt) {
      if (alive) {
        if (Date.now() - stopRequestedAt > this.config.orchestrator.stopGraceMs) {
          this.log.warn({ job: record.jobId, pid: current.groupPid }, 'the old version did not stop within the grace period; killing its process group');
          this.launcher.kill(current);
        }
        return record;
      }
      // Exited cleanly: its report is still on its way (bounded wait). A crash sends none.
      if (this.launcher.exitCode(current) === 0 && Date.now() - stopRequestedAt < this.config.orchestrator.stopGraceMs) return record;
    }
    const fallback = desired.settings.startingOffsets ?? this.config.orchestrator.defaultStartingOffsets;
    const committed = await readJobOffsets(this.admin, record.jobId, this.options.topics.input);
    const startingOffsets = await startingOffsetsFor(this.admin, record.jobId, this.options.topics.input, fallback);
    this.launcher.handOver(next, startingOffsets);
    const offsets = Object.fromEntries(Object.entries(committed).filter(([, offset]) => offset >= 0));
    this.log.info({ job: record.jobId, version: next.version, startingOffsets, waitedMs: Date.now() - stopRequestedAt }, 'handed over at the boundary');
    return { ...record, handover: { stopRequestedAt, releasedAt: Date.now(), offsets } };
  }

  /** Nothing runs: start once the delay is over (and a stateful job's old process is gone). */
  private async reconcileBackoff(record: JobRecord, desired: Deployment, now: number): Promise<JobRecord> {
    if (record.retiring.length > 0 && desired.stateful) return record; // the old process still holds the checkpoint
    if (record.nextStartAt !== null && now < record.nextStartAt) return record;
    if ((record.outages ?? 0) > 0) return this.startJob(record, desired, LifecycleEvents.RESTARTED, 'outage');
    const afterCrash = record.crashes.length > 0;
    return this.startJob({ ...record, restarts: record.restarts + (afterCrash ? 1 : 0) }, desired, afterCrash ? LifecycleEvents.RESTARTED : LifecycleEvents.STARTING);
  }

  /**
   * Replay: stop the job's processes (after their batch), move its group back to the
   * offsets at `since`, fence off their late progress reports, drop a stateful job's
   * checkpoint (Spark would resume from it, not from the group), start it again.
   */
  private async reconcileReplaying(record: JobRecord, desired: Deployment, replay: ReplayRequest | null, now: number): Promise<JobRecord> {
    let result = record;
    for (const job of [record.current, record.next]) {
      if (job && !this.launcher.isGone(job)) result = await this.retire(result, job);
    }
    result = { ...result, current: null, next: null, nextStartAt: null };
    // The request is gone (completed by a pass whose start then failed): start as after a stop.
    if (!replay) return this.reconcileBackoff({ ...result, state: 'backoff' }, desired, now);
    if (result.retiring.length > 0) return result; // next tick, once they have exited
    const boundary = replay.backfill ? this.archivedBoundary() : null;
    if (replay.backfill && !boundary) {
      // Checked when requested; an archive folder emptied since then cannot be read from.
      this.log.warn({ job: record.jobId }, 'backfill dropped: the history archive holds no committed batch; starting the job where it was');
      await this.store.completeReplay(record.jobId);
      return this.startJob(result, desired, LifecycleEvents.STARTING);
    }
    const fence = Date.now();
    await this.store.setOffsetFence(record.jobId, fence);
    // A backfill: the stream starts where the archive ends (partitions it has not seen: at `since`).
    const offsets = (await this.admin.fetchTopicOffsetsByTimestamp(this.options.topics.input, replay.since))
      .map((p) => (boundary?.offsets[String(p.partition)] === undefined ? p : { ...p, offset: String(boundary.offsets[String(p.partition)]) }));
    try {
      await setGroupOffsets(this.kafka, record.jobId, this.options.topics.input, offsets.map((p) => ({ partition: p.partition, offset: String(p.offset) })));
    } catch (error) {
      // Offsets are set by briefly joining the group; a commit of the stopped process's
      // last report may still hold it. Try again next tick.
      if (!(error instanceof GroupNotEmptyError)) throw error;
      this.log.info({ job: record.jobId }, 'replay waits for the consumer group to be idle');
      return result;
    }
    if (desired.stateful) rmSync(join(this.options.checkpointsDir, record.jobId), { recursive: true, force: true });
    await this.store.completeReplay(record.jobId);
    await this.store.mergeMetrics(record.jobId, { committedAt: Date.now() }); // the group's offsets were just written
    const moved = Object.fromEntries(offsets.map((p) => [String(p.partition), Number(p.offset)]));
    const since = new Date(replay.since).toISOString();
    if (boundary) {
      await this.store.clearBackfillReport(record.jobId);
      this.log.info({ job: record.jobId, since, historyBatch: boundary.batch, offsets: moved }, 'backfilling: the stream will start where the archived history ends');
      await this.emit(LifecycleEvents.BACKFILLING, record, { since, offsets: moved });
      return this.startJob({ ...result, backfill: { since: replay.since, historyBatch: boundary.batch, offsets: moved } }, desired, LifecycleEvents.STARTING);
    }
    this.log.info({ job: record.jobId, since, offsets: moved }, 'replaying');
    await this.emit(LifecycleEvents.REPLAYED, record, { since, offsets: moved });
    return this.startJob({ ...result, backfill: null }, desired, LifecycleEvents.STARTING);
  }

  private archivedBoundary(): ArchivedBoundary | null {
    return this.options.historyArchiveDir ? archivedBoundary(recordsCheckpointOf(this.options.historyArchiveDir), this.options.topics.input) : null;
  }

  /**
   * A backfill in progress: done once this launch reported `backfilled` (event, record
   * cleared); until then its heartbeat stands in for the stall check (its group does not move).
   */
  private async watchBackfill(record: JobRecord, current: JobProcess, now: number): Promise<JobRecord | 'stalled' | null> {
    if (!record.backfill) return null;
    const report = await this.store.backfillReport(record.jobId);
    if (report && report.at >= current.startedAt) {
      await this.store.clearBackfillReport(record.jobId);
      this.log.info({ job: record.jobId, ...report }, 'backfilled');
      await this.emit(LifecycleEvents.BACKFILLED, record, {
        version: current.version, since: new Date(record.backfill.since).toISOString(), offsets: record.backfill.offsets,
        rowsIn: report.rowsIn, rowsOut: report.rowsOut, rowsRejected: report.rowsRejected, durationMs: report.durationMs,
      });
      return { ...record, backfill: null };
    }
    const beat = (await this.store.jobMetrics(record.jobId)).backfillingAt ?? current.startedAt;
    return now - Math.max(beat, current.startedAt) > this.config.orchestrator.stallTimeoutMs ? 'stalled' : record;
  }

  /** Given up until redeployed (redeployed() moves it to backoff); only its leftovers are reaped. */
  private async reconcileCrashLooping(record: JobRecord): Promise<JobRecord> {
    return this.retireDead(record);
  }

  /** Stopped (by `diamond down`) but still deployed: start it again with fresh counters. */
  private async reconcileStopped(record: JobRecord, desired: Deployment): Promise<JobRecord> {
    return this.startJob({ ...record, crashes: [], restarts: 0 }, desired, LifecycleEvents.STARTING);
  }

  /** No deployment any more: stop its processes after their batch; `stopped` once they are gone. */
  private async reconcileUndeployed(record: JobRecord): Promise<JobRecord> {
    let result = record;
    for (const job of [record.current, record.next]) {
      if (job && !this.launcher.isGone(job)) result = await this.retire(result, job);
    }
    result = await this.retireDead({ ...result, current: null, next: null });
    if (record.state !== 'stopped' && (!record.current || !this.launcher.isRunning(record.current))) {
      await this.emit(LifecycleEvents.STOPPED, record, { version: record.current?.version ?? null });
    }
    return { ...result, state: 'stopped', nextStartAt: null };
  }

  /**
   * A live job whose deployment names another version: the upgrade's first step (null when
   * it is current, or that version already failed to start and is blocked until redeployed).
   */
  private async upgradeIfOutdated(record: JobRecord, current: JobProcess, desired: Deployment, now: number): Promise<JobRecord | null> {
    if (current.version === desired.version || record.blockedVersion === desired.version) return null;
    if (record.nextStartAt !== null && now < record.nextStartAt) return record;
    if (desired.stateful) {
      // One checkpoint, one query: stop the old version, then the backoff handler starts
      // the new one once the old has exited.
      this.log.info({ job: record.jobId, from: current.version, to: desired.version }, 'upgrading a stateful job: stop, then start');
      return this.retire({ ...record, state: 'backoff', current: null, nextStartAt: now }, current);
    }
    this.log.info({ job: record.jobId, from: current.version, to: desired.version }, 'upgrading: the new version starts warm and waits for the boundary');
    const { job: next, start } = await this.launch(record, desired, { handover: true });
    await this.emit(LifecycleEvents.STARTING, record, { version: desired.version, upgradeFrom: current.version, ...start });
    return { ...record, state: 'upgrading', next, lastLogFile: next.logFile, handover: { stopRequestedAt: null, releasedAt: null } };
  }

  /** The stall reason when the job's committed offsets stand still while input waits. */
  private async checkStalled(jobId: string, job: JobProcess, now: number): Promise<string | null> {
    if (!this.inputEnds) return null;
    const committed = Object.fromEntries(Object.entries(await readJobOffsets(this.admin, jobId, this.options.topics.input)).filter(([, o]) => o >= 0));
    const position = Object.values(committed).reduce((sum, offset) => sum + offset, 0);
    const verdict = watchProgress(this.watches.get(job.groupPid) ?? null, position, lagOf(committed, this.inputEnds), now, this.config.orchestrator.stallTimeoutMs);
    this.watches.set(job.groupPid, verdict.watch);
    return verdict.kind === 'stalled' ? verdict.reason : null;
  }

  /** A hung job cannot finish its batch: kill it, then restart like after a crash. */
  private async stalled(record: JobRecord, job: JobProcess, reason: string, now: number): Promise<JobRecord> {
    this.log.warn({ job: record.jobId, pid: job.groupPid, reason }, 'job stalled; killing and restarting it');
    await this.emit(LifecycleEvents.STALLED, record, { version: job.version, pid: job.groupPid, error: reason });
    await this.store.mergeMetrics(record.jobId, { stalledAt: now }); // the stalled alert holds until the job commits again
    this.launcher.kill(job);
    this.watches.delete(job.groupPid);
    if (this.kafkaHealth.outageAt(now)) {
      return this.outage({ ...record, retiring: [...record.retiring, { job, stopRequestedAt: 0 }] }, job, null, `${reason} (while Kafka was unreachable)`, now);
    }
    const decision = decideAfterCrash(record, now, this.policy);
    const killed = { ...record, retiring: [...record.retiring, { job, stopRequestedAt: 0 }], current: null, crashes: decision.crashes, lastError: reason };
    if (decision.kind === 'crash-looping') {
      await this.emit(LifecycleEvents.CRASH_LOOPING, record, { version: job.version, crashes: decision.crashes.length, error: reason });
      return { ...killed, state: 'crash-looping', nextStartAt: null };
    }
    return { ...killed, state: 'backoff', nextStartAt: now + decision.delayMs };
  }

  /** A process we did not ask to stop is gone: restart with backoff, or give up. */
  private async crashed(record: JobRecord, job: JobProcess | null, now: number): Promise<JobRecord> {
    const exitCode = job ? this.launcher.exitCode(job) : null;
    const reported = await this.store.lastFailure(record.jobId);
    const cause = reported && job && reported.at >= job.startedAt ? reported.message : job ? this.launcher.lastError(job) : 'no process';
    const lastError = describeJobEnd({ exitCode, groupPid: job?.groupPid ?? null, cause, seenAt: now }).slice(0, 2000);
    if (exitCode === EXIT_OUTAGE || this.kafkaHealth.outageAt(now)) return this.outage(record, job, exitCode, lastError, now);
    const decision = decideAfterCrash(record, now, this.policy);
    await this.emit(LifecycleEvents.FAILED, record, { version: job?.version ?? null, exitCode, error: lastError });
    if (decision.kind === 'crash-looping') {
      this.log.error({ job: record.jobId, crashes: decision.crashes.length, error: lastError }, 'crash-looping; no more restarts until redeployed');
      await this.emit(LifecycleEvents.CRASH_LOOPING, record, { version: job?.version ?? null, crashes: decision.crashes.length, error: lastError });
      return { ...record, state: 'crash-looping', current: null, crashes: decision.crashes, lastError, nextStartAt: null };
    }
    this.log.warn({ job: record.jobId, restartInMs: decision.delayMs, error: lastError }, 'job crashed; restarting after backoff');
    return { ...record, state: 'backoff', current: null, crashes: decision.crashes, lastError, nextStartAt: now + decision.delayMs };
  }

  /**
   * Unreachable infrastructure, not the use case's fault: restart after the backoff (growing
   * with consecutive outages, capped), crashes untouched, so never crash-looping.
   */
  private async outage(record: JobRecord, job: JobProcess | null, exitCode: number | null, error: string, now: number): Promise<JobRecord> {
    const outages = (record.outages ?? 0) + 1;
    const delayMs = backoffDelayMs(outages, this.policy);
    const lastError = `outage: ${error}`.slice(0, 2000);
    this.log.warn({ job: record.jobId, outages, restartInMs: delayMs, error: lastError }, 'job exited because infrastructure is unreachable; restarting after backoff (not counted as a crash)');
    await this.emit(LifecycleEvents.OUTAGE, record, { version: job?.version ?? null, exitCode, error: lastError, outages });
    return { ...record, state: 'backoff', current: null, outages, lastError, nextStartAt: now + delayMs };
  }

  private async startJob(record: JobRecord, desired: Deployment, event: typeof LifecycleEvents.STARTING | typeof LifecycleEvents.RESTARTED, reason?: 'outage'): Promise<JobRecord> {
    const { job: current, start } = await this.launch(record, desired);
    if (event === LifecycleEvents.RESTARTED) this.metrics.countRestart(record, reason ?? 'crash');
    await this.emit(event, record, { version: desired.version, restarts: record.restarts, ...(reason ? { reason } : {}), ...start });
    return { ...record, state: 'starting', current, next: null, nextStartAt: null, lastLogFile: current.logFile, updatedAt: Date.now() };
  }

  /**
   * Launch and record are crash-safe: the launch id goes to Redis (fenced by the lease)
   * before the spawn, so a stale leader never spawns, and a process whose launch never made
   * it into the record is an orphan the next tick stops (reapOrphans). A warm spare that
   * fits is taken before a cold spark-submit (driver-pool.ts); the spare's id is the launch id,
   * and a spare taken but never recorded is an orphan of the job its assignment names.
   */
  private async launch(record: JobRecord, desired: Deployment, options: { handover?: boolean } = {}): Promise<{ job: JobProcess; start: { warm: boolean; cold?: string } }> {
    const fallback = desired.settings.startingOffsets ?? this.config.orchestrator.defaultStartingOffsets;
    const startingOffsets = await startingOffsetsFor(this.admin, record.jobId, this.options.topics.input, fallback);
    const claim = await this.pool.claim(desired, this.lease.fence);
    const launchId = claim.spare ? claim.spare.spareId : JobLauncher.newLaunchId(desired.version);
    await this.store.putLaunchIntent(record.jobId, launchId, this.lease.fence);
    const backfill = record.backfill ? { since: new Date(record.backfill.since).toISOString(), historyBatch: record.backfill.historyBatch } : undefined;
    const spec = { deployment: desired, jobId: record.jobId, startingOffsets, launchId, ...options, ...(backfill ? { backfill } : {}) };
    const job = claim.spare ? this.launcher.claim(claim.spare, spec) : this.launcher.start(spec);
    const start = claim.spare ? { warm: true } : { warm: false, cold: claim.cold };
    this.log.info({ job: record.jobId, version: desired.version, launch: launchId, startingOffsets, pid: job.groupPid, logFile: job.logFile, ...start }, 'started');
    return { job, start };
  }

  /** Asks a process to stop after its batch; the record keeps it until it is gone. */
  private async retire(record: JobRecord, job: JobProcess): Promise<JobRecord> {
    this.launcher.requestStop(job);
    this.log.info({ job: record.jobId, version: job.version, pid: job.groupPid }, 'stopping gracefully');
    return { ...record, retiring: [...record.retiring, { job, stopRequestedAt: Date.now() }] };
  }

  /** Retiring processes: gone → forget (event); past the grace period → SIGKILL. */
  private async retireDead(record: JobRecord): Promise<JobRecord> {
    const remaining = [];
    for (const entry of record.retiring ?? []) {
      if (this.launcher.isGone(entry.job)) {
        await this.emit(LifecycleEvents.STOPPED, record, { version: entry.job.version, exitCode: this.launcher.exitCode(entry.job) });
        continue;
      }
      if (Date.now() - entry.stopRequestedAt > this.config.orchestrator.stopGraceMs) {
        this.log.warn({ job: record.jobId, pid: entry.job.groupPid }, 'did not stop within the grace period; killing its process group');
        this.launcher.kill(entry.job);
      }
      remaining.push(entry);
    }
    return remaining.length === record.retiring.length ? record : { ...record, retiring: remaining };
  }

  /** First sight of a record after (re)start: its live processes are adopted, not duplicated. */
  private async adopt(record: JobRecord): Promise<JobRecord> {
    if (this.adopted.has(record.jobId)) return record;
    this.adopted.add(record.jobId);
    const live = [record.current, record.next].filter((job): job is JobProcess => job !== null && this.launcher.isRunning(job));
    if (live.length > 0) {
      this.log.info({ job: record.jobId, pids: live.map((job) => job.groupPid) }, 'adopted running job');
      await this.emit(LifecycleEvents.ADOPTED, record, { version: live[0]!.version, pid: live[0]!.groupPid });
    }
    return record;
  }

  private async save(record: JobRecord, before: JobRecord | null): Promise<void> {
    this.adopted.add(record.jobId); // this orchestrator knows the job now; nothing to adopt
    this.tracked.set(record.jobId, [record.current, record.next].filter((job): job is JobProcess => job !== null));
    const launched = record.next ?? record.current;
    if ((record.state === 'starting' || record.state === 'upgrading') && launched) this.launching.set(record.jobId, launched.startedAt);
    else if (record.state !== 'running') this.launching.delete(record.jobId); // running: until its first batch is reported
    if (record.state === 'backoff' && record.nextStartAt !== null) this.dueAt.set(record.jobId, record.nextStartAt);
    else this.dueAt.delete(record.jobId);
    if (before !== null && JSON.stringify(record) === JSON.stringify(before)) return;
    await this.store.putJobFenced({ ...record, updatedAt: Date.now() }, this.lease.fence);
  }

  private async emit(event: LifecycleEvent, record: JobRecord, fields: Omit<LifecycleEventFields, 'job' | 'usecase' | 'variant'>): Promise<void> {
    try {
      await this.events.publish(event, { job: record.jobId, usecase: record.usecase, variant: record.variant, ...fields });
    } catch (error) {
      this.log.warn({ job: record.jobId, event, error: errorMessage(error) }, 'could not publish the lifecycle event');
    }
  }
}

function newRecord(jobId: string, desired: Deployment, now: number): JobRecord {
  return {
    jobId, usecase: desired.usecase, variant: desired.variant, state: 'starting', generation: desired.generation,
    current: null, next: null, retiring: [], restarts: 0, crashes: [], nextStartAt: null, lastError: null, lastLogFile: null, updatedAt: now,
  };
}

/** A new deploy: attempt counters start over and a crash loop or stop is lifted. */
function redeployed(record: JobRecord, desired: Deployment, now: number): JobRecord {
  const reset = { ...record, generation: desired.generation, restarts: 0, crashes: [], outages: 0, lastError: null, blockedVersion: null };
  if (record.state === 'crash-looping' || record.state === 'stopped') return { ...reset, state: 'backoff', nextStartAt: now };
  if (record.state === 'backoff') return { ...reset, nextStartAt: now };
  return { ...reset, nextStartAt: null };
}
