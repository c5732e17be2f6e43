/**
 * `diamond down`'s stop of the use case jobs. It runs after the orchestrator was stopped
 * and holds the orchestrator's leader lease meanwhile, so no orchestrator restarts what it
 * stops. Each live job process is asked to stop (SIGTERM to its Python driver: it finishes
 * its batch, reports its end offsets and exits 0; SIGKILL after the grace period), its
 * record is saved as `stopped` without processes, and the jobs' last progress reports are
 * committed with the orchestrator's own logic. Deployments stay: the next orchestrator
 * starts every stopped, still deployed job from its committed offsets.
 *
 * A job is its whole process tree: whatever still carries a launch marker afterwards (the
 * JVM and driver of a job whose group leader was killed, a launch its record never named)
 * is stopped too, and `down` returns only once /proc shows none.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError, errorMessage } from '../../shared/errors.ts';
import { createKafka } from '../../shared/kafka.ts';
import type { Logger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { JobLauncher, type MarkedProcess } from '../orchestrator/launcher.ts';
import { signalAll } from '../../shared/process-group.ts';
import { EventPublisher } from '../orchestrator/events.ts';
import type { OrchestratorOptions } from '../orchestrator/options.ts';
import { ProgressIngest } from '../orchestrator/progress-ingest.ts';
import type { JobProcess, JobRecord } from '../orchestrator/state.ts';
import { DeploymentStore } from '../orchestrator/store.ts';

export interface StoppedJob {
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  /** Process groups that were running. */
  readonly pids: readonly number[];
  /** Killed after the grace period instead of finishing its batch. */
  readonly forced: boolean;
}

export interface StopJobsOptions {
  /** SIGTERM → SIGKILL grace (default the orchestrator's stop grace). */
  readonly graceMs?: number;
  /** Told before the wait, e.g. to print what is being stopped. */
  readonly onStopping?: (jobs: readonly string[], graceMs: number) => void;
}

export async function stopJobs(config: DiamondConfig, orchestrator: OrchestratorOptions, log: Logger, options: StopJobsOptions = {}): Promise<StoppedJob[]> {
  const graceMs = options.graceMs ?? config.orchestrator.stopGraceMs;
  const launcher = new JobLauncher(config, orchestrator.topics, { jobs: orchestrator.jobsDir, checkpoints: orchestrator.checkpointsDir });
  const redis = createRedis(config, { keyPrefix: orchestrator.keyPrefix });
  await redis.connect();
  const store = new DeploymentStore(redis);
  try {
    const liveOf = (record: JobRecord): JobProcess[] =>
      [record.current, record.next, ...record.retiring.map((entry) => entry.job)].filter((job): job is JobProcess => job !== null && !launcher.isGone(job));
    const records = (await store.listJobs()).filter((record) => liveOf(record).length > 0);
    if (records.length === 0 && launcher.jobProcesses().length === 0) return [];

    const holder = `diamond-down-${process.pid}`;
    const fence = await holdLease(store, holder, config.orchestrator.leaseMs);
    const renew = setInterval(() => void store.renewLease(fence, config.orchestrator.leaseMs).catch(() => undefined), Math.floor(config.orchestrator.leaseMs / 3));
    try {
      const processes = new Map(records.map((record) => [record.jobId, liveOf(record)]));
      for (const job of [...processes.values()].flat()) launcher.requestStop(job);
      options.onStopping?.([...processes.keys()], graceMs);
      const forced = await waitStopped(launcher, [...processes.values()].flat(), graceMs);
      // Before the records forget the launches: their last reports are signed with the
      // launches' keys, which the progress handler checks against the records.
      await reportStopped(config, orchestrator, log, records, launcher);
      const stopped: StoppedJob[] = [];
      for (const record of records) {
        const pids = processes.get(record.jobId)!;
        // A crash loop stays one (a redeploy lifts it); anything else starts again on the next `up`.
        const state = record.state === 'crash-looping' ? 'crash-looping' : 'stopped';
        await store.putJobFenced({ ...record, state, current: null, next: null, retiring: [], nextStartAt: null, updatedAt: Date.now() }, fence);
        stopped.push({ job: record.jobId, usecase: record.usecase, variant: record.variant, pids: pids.map((job) => job.groupPid), forced: pids.some((job) => forced.has(job)) });
        log.info({ job: record.jobId, pids: pids.map((job) => job.groupPid) }, 'stopped');
      }
      await stopStrays(launcher, log, graceMs);
      return stopped;
    } finally {
      clearInterval(renew);
      await store.releaseLease(fence).catch(() => undefined);
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * Every process still carrying a launch marker (no record names it, or its group leader
 * died): SIGTERM, SIGKILL after the grace, and confirmed gone under /proc.
 */
async function stopStrays(launcher: JobLauncher, log: Logger, graceMs: number): Promise<void> {
  let strays = launcher.jobProcesses();
  if (strays.length === 0) return;
  log.warn({ pids: strays.map((p) => p.pid) }, 'stopping job processes no record names');
  const signal = (processes: readonly MarkedProcess[], name: NodeJS.Signals): void => signalAll(processes.map((p) => p.pgid), processes.map((p) => p.pid), name);
  signal(strays, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (strays = launcher.jobProcesses()).length > 0) await sleep(250);
  const killDeadline = Date.now() + 10_000;
  while ((strays = launcher.jobProcesses()).length > 0) {
    if (Date.now() > killDeadline) {
      throw new DiamondError(`job processes ${strays.map((p) => p.pid).join(', ')} survived SIGKILL`, {
        code: 'DIAMOND_JOB_UNKILLABLE',
        hint: 'they may be stuck in the kernel (state D) or belong to another user; check `ps -o pid,stat,user,cmd -p <pids>`',
      });
    }
    signal(strays, 'SIGKILL');
    await sleep(100);
  }
}

/** Takes the leader lease (its fencing token); waits out a lease left by a killed orchestrator, refuses a live one. */
async function holdLease(store: DeploymentStore, holder: string, leaseMs: number): Promise<string> {
  const deadline = Date.now() + leaseMs + 2000;
  for (;;) {
    const fence = await store.acquireLease(holder, leaseMs);
    if (fence !== null) return fence;
    if (Date.now() > deadline) {
      throw new DiamondError(`another orchestrator (${await store.leaseHolder() ?? 'unknown'}) supervises the use case jobs, so stopping them would only make it restart them`, {
        code: 'DIAMOND_ORCHESTRATOR_RUNNING',
        hint: 'stop that orchestrator (Ctrl-C where `diamond serve orchestrator` runs), then run `npx diamond down` again',
      });
    }
    await sleep(500);
  }
}

/** Waits until every process exited; SIGKILLs what is left after `graceMs`. Returns the killed ones. */
async function waitStopped(launcher: JobLauncher, jobs: readonly JobProcess[], graceMs: number): Promise<Set<JobProcess>> {
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && jobs.some((job) => !launcher.isGone(job))) await sleep(250);
  const forced = new Set(jobs.filter((job) => !launcher.isGone(job)));
  for (const job of forced) launcher.kill(job);
  const killDeadline = Date.now() + 10_000;
  while (Date.now() < killDeadline && [...forced].some((job) => !launcher.isGone(job))) await sleep(100);
  return forced;
}

/**
 * `stopped` events, then the jobs' last progress reports committed as the orchestrator
 * would (same consumer group, same handler), so the next start resumes after the last
 * finished batch. Best effort: a missed report only means a batch is processed again.
 */
async function reportStopped(config: DiamondConfig, orchestrator: OrchestratorOptions, log: Logger, records: readonly JobRecord[], launcher: JobLauncher): Promise<void> {
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-down`, retries: 2 });
  const producer = kafka.producer();
  try {
    await producer.connect();
    const events = new EventPublisher(producer, orchestrator.topics.events);
    for (const record of records) {
      const job = record.current ?? record.next;
      await events.publish('stopped', {
        job: record.jobId, usecase: record.usecase, variant: record.variant, version: job?.version ?? null,
        exitCode: job ? launcher.exitCode(job) : null, by: 'diamond down',
      });
    }
    await commitLastProgress(config, orchestrator, log, kafka);
  } catch (error) {
    log.warn({ error: errorMessage(error) }, 'could not publish the stop or commit the last progress; the next orchestrator commits it');
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

async function commitLastProgress(config: DiamondConfig, orchestrator: OrchestratorOptions, log: Logger, kafka: Kafka, timeoutMs = 20_000): Promise<void> {
  const topic = orchestrator.topics.progress;
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, number>;
  try {
    const [group] = await admin.fetchOffsets({ groupId: orchestrator.progressGroup, topics: [topic] });
    const committed = new Map((group?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    // Partitions with reports the group has not consumed yet, and the offset to reach.
    ends = new Map((await admin.fetchTopicOffsets(topic))
      .filter((p) => Number(p.high) > Math.max(committed.get(p.partition) ?? -1, Number(p.low)))
      .map((p) => [p.partition, Number(p.high)]));
  } finally {
    await admin.disconnect();
  }
  if (ends.size === 0) return;

  // The orchestrator's own progress handler, on its store and an admin client of ours.
  const redis = createRedis(config, { keyPrefix: orchestrator.keyPrefix });
  const handlerAdmin = kafka.admin();
  const handler = new ProgressIngest(kafka, handlerAdmin, new DeploymentStore(redis), orchestrator, log);
  const consumer = kafka.consumer({ groupId: orchestrator.progressGroup });
  try {
    await redis.connect();
    await handlerAdmin.connect();
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`progress not consumed within ${timeoutMs / 1000} s`)), timeoutMs);
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (message.value) await handler.handle(message.value.toString());
          if (Number(message.offset) + 1 >= (ends.get(partition) ?? 0)) ends.delete(partition);
          if (ends.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined); // commits what was handled
    await handlerAdmin.disconnect().catch(() => undefined);
    redis.disconnect();
  }
}
