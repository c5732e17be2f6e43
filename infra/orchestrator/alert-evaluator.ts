/**
 * The alert evaluator the reconciler owns: at most once per DIAMOND_ALERT_INTERVAL (on the
 * loop's tick, leader only) it gathers a snapshot of every deployed job (state and crashes
 * from the job record, lag from the group's committed offsets, recent batch durations,
 * stall and commit times), runs the rules (alert-rules.ts), keeps the statuses in Redis,
 * publishes each transition on diamond.events (alert-firing, alert-resolved) and hands it
 * to the webhooks (webhook-notifier.ts, never awaited).
 *
 * A transition is published before the new statuses are stored: an orchestrator that dies
 * in between sends it again (at least once), never loses it.
 */
import type { Admin } from 'kafkajs';
import type { AlertSettings } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { alertRules, evaluateAlerts, type AlertJobSnapshot, type AlertRule, type AlertTransition, type RecentBatches } from './alert-rules.ts';
import { LifecycleEvents, type EventPublisher } from './events.ts';
import { readJobOffsets } from './offsets.ts';
import { jobIdFor, lagOf, type Deployment, type JobRecord } from './state.ts';
import type { DeploymentStore } from './store.ts';
import type { WebhookNotifier } from './webhook-notifier.ts';

export interface AlertEvaluatorDeps {
  readonly settings: AlertSettings;
  readonly policy: { readonly crashLoopMax: number; readonly stallTimeoutMs: number; readonly defaultStartingOffsets: 'earliest' | 'latest' };
  readonly store: DeploymentStore;
  readonly admin: Admin;
  readonly inputTopic: string;
  readonly jobPrefix: string;
  readonly events: EventPublisher;
  readonly webhooks: WebhookNotifier;
  readonly batches: RecentBatches;
  readonly log: Logger;
}

export class AlertEvaluator {
  private readonly rules: AlertRule[];
  private lastRun: number | null = null;

  constructor(private readonly deps: AlertEvaluatorDeps) {
    this.rules = alertRules(deps.settings, deps.policy);
  }

  /** Evaluates when the interval has passed since the last evaluation; never throws. */
  async maybeEvaluate(now = Date.now()): Promise<void> {
    if (this.lastRun !== null && now - this.lastRun < this.deps.settings.intervalMs) return;
    this.lastRun = now;
    try {
      await this.evaluate(now);
    } catch (error) {
      this.deps.log.warn({ error: errorMessage(error) }, 'could not evaluate the alert rules; trying again next interval');
    }
  }

  async evaluate(now = Date.now()): Promise<AlertTransition[]> {
    const { store } = this.deps;
    const [deployments, records, previous] = await Promise.all([store.listDeployments(), store.listJobs(), store.alertStatuses()]);
    const byJob = new Map(records.map((record) => [record.jobId, record]));
    const partitions = await this.deps.admin.fetchTopicOffsets(this.deps.inputTopic).catch(() => null);
    const jobs = await Promise.all(deployments.map((deployment) => this.snapshot(deployment, byJob.get(jobIdFor(deployment.usecase, deployment.variant, this.deps.jobPrefix)) ?? null, partitions, now)));
    const deployed = new Set(jobs.map((job) => job.job));
    for (const record of records) if (!deployed.has(record.jobId)) this.deps.batches.forget(record.jobId);
    const { statuses, transitions } = evaluateAlerts(this.rules, jobs, previous, now);
    for (const transition of transitions) await this.announce(transition);
    await store.putAlertStatuses(statuses, previous);
    return transitions;
  }

  private async snapshot(deployment: Deployment, record: JobRecord | null, partitions: { partition: number; low: string; high: string }[] | null, now: number): Promise<AlertJobSnapshot> {
    const job = jobIdFor(deployment.usecase, deployment.variant, this.deps.jobPrefix);
    const [metrics, lag] = await Promise.all([this.deps.store.jobMetrics(job), partitions ? this.lag(job, deployment, partitions) : Promise.resolve(null)]);
    return {
      job, usecase: deployment.usecase, variant: deployment.variant, state: record?.state ?? 'pending', lag,
      batchP99Ms: this.deps.batches.p99Ms(job, now), crashes: record?.crashes.length ?? 0,
      stalledAt: metrics.stalledAt ?? null, committedAt: metrics.committedAt ?? null,
    };
  }

  /**
   * Records after the committed offsets; a partition with nothing committed counts from its
   * start when the job starts at the earliest offsets, not at all when it starts at the
   * latest (it has not missed them). null when Kafka did not answer.
   */
  private async lag(job: string, deployment: Deployment, partitions: readonly { partition: number; low: string; high: string }[]): Promise<number | null> {
    const committed = await readJobOffsets(this.deps.admin, job, this.deps.inputTopic).catch(() => null);
    if (!committed) return null;
    const fromEarliest = (deployment.settings.startingOffsets ?? this.deps.policy.defaultStartingOffsets) === 'earliest';
    const ends: Record<string, number> = {};
    const starts: Record<string, number> = {};
    for (const p of partitions) {
      const key = String(p.partition);
      ends[key] = Number(p.high);
      starts[key] = fromEarliest ? Number(p.low) : Number(p.high); // used only where nothing is committed
    }
    return lagOf(Object.fromEntries(Object.entries(committed).filter(([, offset]) => offset >= 0)), ends, starts);
  }

  private async announce(transition: AlertTransition): Promise<void> {
    const { log } = this.deps;
    const fields = { rule: transition.rule, severity: transition.severity, summary: transition.summary, value: transition.value, threshold: transition.threshold, unit: transition.unit };
    if (transition.kind === 'firing') log.warn({ job: transition.job, ...fields }, `alert firing: ${transition.summary}`);
    else log.info({ job: transition.job, ...fields }, `alert resolved: ${transition.summary}`);
    this.deps.webhooks.notify(transition);
    try {
      await this.deps.events.publish(transition.kind === 'firing' ? LifecycleEvents.ALERT_FIRING : LifecycleEvents.ALERT_RESOLVED, {
        job: transition.job, usecase: transition.usecase, variant: transition.variant, ...fields,
        ...(transition.kind === 'resolved' && transition.firedAt !== null ? { firingSince: new Date(transition.firedAt).toISOString() } : {}),
      });
    } catch (error) {
      log.warn({ job: transition.job, rule: transition.rule, error: errorMessage(error) }, 'could not publish the alert event');
    }
  }
}
