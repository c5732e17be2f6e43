/**
 * Alert rules: pure evaluation over a snapshot of the jobs the orchestrator already has
 * (state, lag, batch durations, crashes, stall and commit times). No I/O here; the
 * evaluator (alert-evaluator.ts) gathers the snapshot, keeps the statuses in Redis, and
 * publishes and delivers the transitions.
 *
 *   rule              condition                                              value (unit)
 *   lag               input lag > N records                                  records
 *   batch-p99         p99 of recent batch durations > the SLO                ms
 *   crash-looping     the job is crash-looping                               crashes
 *   stalled           found stalled (or never reporting) and no commit since ms without a commit
 *   offsets-expiring  no commit for (retention − margin): Kafka drops them   ms since the last commit
 *
 * Per (rule, job), a condition that starts holding makes the alert pending; it fires once
 * the condition held for the rule's "for" duration (0 = at once), and resolves once when it
 * clears. A pending alert whose condition clears is forgotten without a word. A condition
 * that cannot be measured (Kafka did not answer, no batch seen since this orchestrator
 * started) changes nothing: unknown is not clear. A job that is no longer deployed resolves
 * its firing alerts.
 *
 *              holds                   held for "for"
 *   (none) ──────────► pending ──────────────────────► firing ──── clears ───► (none): alert-resolved
 *     ▲                   │ clears                   alert-firing
 *     └───────────────────┘ (no event)
 */
import type { AlertSettings } from '../../shared/config.ts';
import type { AlertRuleName, AlertSeverity } from '../../shared/messages.ts';
import type { JobState } from './state.ts';

export const ALERT_RULES: readonly AlertRuleName[] = ['lag', 'batch-p99', 'crash-looping', 'stalled', 'offsets-expiring'];

/** One deployed job as the rules see it; null = not measurable right now. */
export interface AlertJobSnapshot {
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  /** `pending` = deployed, no record yet. */
  readonly state: JobState | 'pending';
  /** Records behind the input topic's end, all partitions; null when Kafka did not answer. */
  readonly lag: number | null;
  /** p99 of the durations (ms) of the batches finished in the window; 0 when none finished in it; null when unknown. */
  readonly batchP99Ms: number | null;
  /** Crashes in the crash window (the record's count). */
  readonly crashes: number;
  /** When the reconciler last found the job stalled (ms); null = never. */
  readonly stalledAt: number | null;
  /** When the orchestrator last moved the job's committed offsets (ms); null = unknown. */
  readonly committedAt: number | null;
}

export interface Measurement {
  readonly holds: boolean;
  readonly value: number | null;
}

export interface AlertRule {
  readonly name: AlertRuleName;
  readonly severity: AlertSeverity;
  readonly threshold: number;
  readonly unit: string;
  readonly forMs: number;
  /** null = cannot be measured now (the alert keeps its status). */
  measure(job: AlertJobSnapshot, now: number): Measurement | null;
  /** One line for a human about the measured value. */
  describe(job: AlertJobSnapshot, value: number | null): string;
}

/** The rules with the configured thresholds (the crash-looping and stalled thresholds are the supervision policy's). */
export function alertRules(settings: AlertSettings, policy: { readonly crashLoopMax: number; readonly stallTimeoutMs: number }): AlertRule[] {
  const retentionLeft = settings.offsetsRetentionMs - settings.offsetsExpireWithinMs;
  return [
    {
      name: 'lag', severity: 'warning', threshold: settings.lag.threshold, unit: 'records', forMs: settings.lag.forMs,
      measure: (job) => (job.lag === null ? null : { holds: job.lag > settings.lag.threshold, value: job.lag }),
      describe: (job, value) => `${job.job}: lag ${value ?? '?'} records (threshold ${settings.lag.threshold}${forText(settings.lag.forMs)})`,
    },
    {
      name: 'batch-p99', severity: 'warning', threshold: settings.batchP99.threshold, unit: 'ms', forMs: settings.batchP99.forMs,
      measure: (job) => (job.batchP99Ms === null ? null : { holds: job.batchP99Ms > settings.batchP99.threshold, value: job.batchP99Ms }),
      describe: (job, value) => `${job.job}: batch duration p99 ${value === null ? '?' : formatMs(value)} over the last ${formatMs(settings.batchP99WindowMs)} (SLO ${formatMs(settings.batchP99.threshold)}${forText(settings.batchP99.forMs)})`,
    },
    {
      name: 'crash-looping', severity: 'critical', threshold: policy.crashLoopMax, unit: 'crashes', forMs: settings.crashLoopingForMs,
      measure: (job) => ({ holds: job.state === 'crash-looping', value: job.crashes }),
      describe: (job, value) => (job.state === 'crash-looping'
        ? `${job.job}: crash-looping after ${value ?? '?'} crashes in the window; no restarts until redeployed`
        : `${job.job}: no longer crash-looping (${job.state})`),
    },
    {
      name: 'stalled', severity: 'critical', threshold: policy.stallTimeoutMs, unit: 'ms', forMs: settings.stalledForMs,
      measure: (job, now) => {
        if (job.stalledAt === null) return { holds: false, value: null };
        const progressedSince = job.committedAt !== null && job.committedAt >= job.stalledAt;
        return { holds: !progressedSince, value: Math.max(0, now - (job.committedAt ?? job.stalledAt)) };
      },
      describe: (job, value) => `${job.job}: found stalled (offsets standing still while records wait, or never reporting) and not committed since; ${job.committedAt === null ? 'never committed' : `${value === null ? '?' : formatMs(value)} without a commit`}`,
    },
    {
      name: 'offsets-expiring', severity: 'warning', threshold: retentionLeft, unit: 'ms', forMs: 0,
      measure: (job, now) => (job.committedAt === null ? null : { holds: now - job.committedAt >= retentionLeft, value: now - job.committedAt }),
      describe: (job, value) => `${job.job}: committed offsets last moved ${value === null ? '?' : formatMs(value)} ago; Kafka drops them ${formatMs(settings.offsetsRetentionMs)} after the last commit (offsets.retention.minutes), and the job would then start from its fallback`,
    },
  ];
}

/** What is remembered per (rule, job) between evaluations (persisted, so a restart neither re-fires nor forgets). */
export interface AlertStatus {
  readonly rule: AlertRuleName;
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  readonly state: 'pending' | 'firing';
  /** When the condition started holding. */
  readonly since: number;
  readonly firedAt: number | null;
  readonly value: number | null;
}

export interface AlertTransition {
  readonly kind: 'firing' | 'resolved';
  readonly rule: AlertRuleName;
  readonly severity: AlertSeverity;
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  readonly value: number | null;
  readonly threshold: number;
  readonly unit: string;
  readonly summary: string;
  readonly at: number;
  /** resolved: when it fired. */
  readonly firedAt: number | null;
}

export const alertKey = (rule: string, job: string): string => `${rule}|${job}`;

export interface AlertEvaluation {
  /** Pending and firing alerts after this evaluation, by alertKey. */
  readonly statuses: Map<string, AlertStatus>;
  readonly transitions: AlertTransition[];
}

/** One evaluation of every rule over every job, from the statuses of the previous one. */
export function evaluateAlerts(rules: readonly AlertRule[], jobs: readonly AlertJobSnapshot[], previous: ReadonlyMap<string, AlertStatus>, now: number): AlertEvaluation {
  const statuses = new Map<string, AlertStatus>();
  const transitions: AlertTransition[] = [];
  const seen = new Set<string>();
  for (const job of jobs) {
    for (const rule of rules) {
      const key = alertKey(rule.name, job.job);
      seen.add(key);
      const before = previous.get(key) ?? null;
      const measured = rule.measure(job, now);
      if (measured === null) {
        if (before) statuses.set(key, before); // unknown is not clear
        continue;
      }
      const transition = (kind: AlertTransition['kind'], firedAt: number | null): AlertTransition => ({
        kind, rule: rule.name, severity: rule.severity, job: job.job, usecase: job.usecase, variant: job.variant,
        value: measured.value, threshold: rule.threshold, unit: rule.unit, summary: rule.describe(job, measured.value), at: now, firedAt,
      });
      if (!measured.holds) {
        if (before?.state === 'firing') transitions.push(transition('resolved', before.firedAt));
        continue;
      }
      const since = before?.since ?? now;
      if (before?.state === 'firing') {
        statuses.set(key, { ...before, value: measured.value });
      } else if (now - since >= rule.forMs) {
        statuses.set(key, { rule: rule.name, job: job.job, usecase: job.usecase, variant: job.variant, state: 'firing', since, firedAt: now, value: measured.value });
        transitions.push(transition('firing', now));
      } else {
        statuses.set(key, { rule: rule.name, job: job.job, usecase: job.usecase, variant: job.variant, state: 'pending', since, firedAt: null, value: measured.value });
      }
    }
  }
  // Jobs no longer deployed: their firing alerts resolve, pending ones are forgotten.
  const byName = new Map(rules.map((rule) => [rule.name, rule]));
  for (const [key, status] of previous) {
    if (seen.has(key) || status.state !== 'firing') continue;
    const rule = byName.get(status.rule);
    transitions.push({
      kind: 'resolved', rule: status.rule, severity: rule?.severity ?? 'warning', job: status.job, usecase: status.usecase, variant: status.variant,
      value: null, threshold: rule?.threshold ?? 0, unit: rule?.unit ?? '', summary: `${status.job}: no longer deployed`, at: now, firedAt: status.firedAt,
    });
  }
  return { statuses, transitions };
}

/** Firing alerts per rule (every rule named, 0 when none): the diamond_alerts_firing gauge. */
export function firingByRule(statuses: Iterable<AlertStatus>): Record<AlertRuleName, number> {
  const counts = Object.fromEntries(ALERT_RULES.map((rule) => [rule, 0])) as Record<AlertRuleName, number>;
  for (const status of statuses) if (status.state === 'firing') counts[status.rule] += 1;
  return counts;
}

/** The nearest-rank percentile (`fraction` 0.5 = p50) of values; 0 for none. */
export function nearestRank(values: readonly number[], fraction: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

/** The nearest-rank p99 of durations; 0 for none. */
export function p99(values: readonly number[]): number {
  return nearestRank(values, 0.99);
}

/**
 * The durations of each job's recent batches (fed by progress ingestion), for the p99 rule.
 * In memory: after an orchestrator restart a job's p99 is unknown (its alert keeps its
 * status) until its first batch.
 */
export class RecentBatches {
  readonly #byJob = new Map<string, { at: number; ms: number }[]>();

  constructor(private readonly windowMs: number, private readonly maxPerJob = 1000) {}

  observe(job: string, ms: number, at: number): void {
    const batches = this.#byJob.get(job) ?? [];
    batches.push({ at, ms });
    if (batches.length > this.maxPerJob) batches.splice(0, batches.length - this.maxPerJob);
    this.#byJob.set(job, batches);
  }

  /** p99 of the job's batches finished within the window; null when none was ever seen. */
  p99Ms(job: string, now: number): number | null {
    const batches = this.#byJob.get(job);
    if (!batches) return null;
    const recent = batches.filter((b) => now - b.at < this.windowMs);
    this.#byJob.set(job, recent);
    return p99(recent.map((b) => b.ms));
  }

  forget(job: string): void {
    this.#byJob.delete(job);
  }
}

function forText(forMs: number): string {
  return forMs > 0 ? ` for ${formatMs(forMs)}` : '';
}

/** 850 ms, 12.5 s, 5 min, 3 h, 2 d. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))} s`;
  if (ms < 3_600_000) return `${Number((ms / 60_000).toFixed(1))} min`;
  if (ms < 86_400_000) return `${Number((ms / 3_600_000).toFixed(1))} h`;
  return `${Number((ms / 86_400_000).toFixed(1))} d`;
}
