/**
 * The orchestrator's series, on one prom-client registry per process (the reconciler and
 * the control API of `diamond serve orchestrator` share it; the control API serves it at
 * GET /metrics to viewers):
 *   diamond_job_state{job,usecase,variant,state}          gauge, 1 for the job's state, 0 for the others
 *   diamond_job_lag_messages{job,partition}               gauge, input end offset − committed offset
 *   diamond_job_restarts_total{job,usecase,variant,reason} counter, reason crash|outage
 *   diamond_job_batch_duration_seconds{job,usecase,variant} histogram, Spark's triggerExecution of each batch
 *   diamond_job_batch_rows{job,usecase,variant}           histogram, input rows of each batch
 *   diamond_job_rows_total{job,usecase,variant,kind}      counter, kind in|out|rejected
 *   diamond_alerts_firing{rule}                           gauge, alerts firing per rule (every rule, 0 when none)
 *   diamond_runs_total{function,state}                    counter, function runs reaching each state (queued, running, finished, …)
 *   diamond_run_duration_seconds{function}                histogram, an ended run's time from started (or queued) to its end
 *   diamond_runs_active{state}                            gauge, runs queued and running now, across functions
 *   diamond_driver_pool_spares{state}                     gauge, warm spare drivers ready and starting
 *   diamond_driver_pool_size                              gauge, the spares the pool keeps (DIAMOND_ORCHESTRATOR_POOL_SIZE)
 * State, lag, alerts, active runs and the pool are read from Redis and Kafka when scraped, so any orchestrator (leader or
 * not) reports every job; restarts and batches are counted by the process that saw them.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { createMetricsRegistry, type MetricsRegistry } from '../../shared/metrics/registry.ts';
import type { AlertRuleName, ProgressMessage } from '../../shared/messages.ts';
import { ALERT_RULES } from './alert-rules.ts';
import { JOB_STATES } from './state.ts';

/** A job as a scrape sees it (from the desired state, the job record and the group's offsets). */
export interface JobSnapshot {
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  readonly state: string;
  /** Partition → messages behind the input topic's end; empty when Kafka did not answer. */
  readonly lagByPartition: Readonly<Record<string, number>>;
}

/** The warm driver pool as a scrape sees it (driver-pool.ts' poolStatus). */
export interface PoolSnapshot {
  readonly size: number;
  readonly ready: number;
  readonly starting: number;
}

/** Every state a job's gauge has a series for: the reconciler's, and `pending` (deployed, no record yet). */
export const REPORTED_STATES: readonly string[] = ['pending', ...JOB_STATES];

/** Seconds of one micro-batch: from a trigger of 500 ms to a catch-up batch of minutes. */
const BATCH_SECONDS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
/** Seconds of one function run: a warm summary in well under a second to a run at its timeout. */
const RUN_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];
const BATCH_ROWS = [0, 1, 10, 100, 1000, 10_000, 100_000, 1_000_000];

type JobLabels = 'job' | 'usecase' | 'variant';

export class OrchestratorMetrics {
  readonly registry: MetricsRegistry;
  readonly #restarts: Counter<JobLabels | 'reason'>;
  readonly #batchDuration: Histogram<JobLabels>;
  readonly #batchRows: Histogram<JobLabels>;
  readonly #rows: Counter<JobLabels | 'kind'>;
  readonly #runs: Counter<'function' | 'state'>;
  readonly #runDuration: Histogram<'function'>;
  #source: (() => Promise<JobSnapshot[]>) | null = null;
  #alerts: (() => Promise<Record<AlertRuleName, number>>) | null = null;
  #pool: (() => Promise<PoolSnapshot>) | null = null;
  #activeRuns: (() => Promise<{ queued: number; running: number }>) | null = null;
  /** The read in flight: a scrape collects every series at once, and both gauges share it. */
  #reading: Promise<JobSnapshot[]> | null = null;

  constructor(registry: MetricsRegistry = createMetricsRegistry()) {
    this.registry = registry;
    const registers = [registry];
    const snapshot = (): Promise<JobSnapshot[]> => this.#jobs();
    new Gauge({
      name: 'diamond_job_state', help: "1 for the job's current state, 0 for every other state.", labelNames: ['job', 'usecase', 'variant', 'state'], registers,
      async collect() {
        this.reset(); // an undeployed job disappears instead of keeping its last state
        for (const job of await snapshot()) {
          for (const state of REPORTED_STATES) this.set({ job: job.job, usecase: job.usecase, variant: job.variant, state }, job.state === state ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'diamond_job_lag_messages', help: "Messages of the input topic after the job's committed offset, by partition.", labelNames: ['job', 'partition'], registers,
      async collect() {
        this.reset();
        for (const job of await snapshot()) for (const [partition, lag] of Object.entries(job.lagByPartition)) this.set({ job: job.job, partition }, lag);
      },
    });
    const alerts = (): Promise<Record<AlertRuleName, number> | null> => (this.#alerts ? this.#alerts().catch(() => null) : Promise.resolve(null));
    new Gauge({
      name: 'diamond_alerts_firing', help: 'Alerts firing, per rule (docs/OPERATING.md, Alerts).', labelNames: ['rule'], registers,
      async collect() {
        const firing = await alerts();
        this.reset(); // Redis down: no series rather than a false 0
        if (firing) for (const rule of ALERT_RULES) this.set({ rule }, firing[rule]);
      },
    });
    const pool = (): Promise<PoolSnapshot | null> => (this.#pool ? this.#pool().catch(() => null) : Promise.resolve(null));
    new Gauge({
      name: 'diamond_driver_pool_spares', help: 'Warm spare drivers of the pool, by state (ready: waiting for a job; starting: still warming up).', labelNames: ['state'], registers,
      async collect() {
        const now = await pool();
        this.reset(); // Redis down: no series rather than a false 0
        if (now) for (const state of ['ready', 'starting'] as const) this.set({ state }, now[state]);
      },
    });
    new Gauge({
      name: 'diamond_driver_pool_size', help: 'Spare drivers the pool keeps warm (DIAMOND_ORCHESTRATOR_POOL_SIZE; 0 = no pool).', registers,
      async collect() {
        const now = await pool();
        this.reset();
        if (now) this.set(now.size);
      },
    });
    const activeRuns = (): Promise<{ queued: number; running: number } | null> => (this.#activeRuns ? this.#activeRuns().catch(() => null) : Promise.resolve(null));
    new Gauge({
      name: 'diamond_runs_active', help: 'Function runs queued and running now, across functions.', labelNames: ['state'], registers,
      async collect() {
        const now = await activeRuns();
        this.reset();
        if (now) for (const state of ['queued', 'running'] as const) this.set({ state }, now[state]);
      },
    });
    this.#restarts = new Counter({ name: 'diamond_job_restarts_total', help: 'Job restarts by this orchestrator, by reason (crash: the use case failed; outage: Kafka or the registry was unreachable).', labelNames: ['job', 'usecase', 'variant', 'reason'], registers });
    this.#batchDuration = new Histogram({ name: 'diamond_job_batch_duration_seconds', help: "Duration of each finished micro-batch (Spark's triggerExecution), from the job's progress reports.", labelNames: ['job', 'usecase', 'variant'], buckets: BATCH_SECONDS, registers });
    this.#batchRows = new Histogram({ name: 'diamond_job_batch_rows', help: 'Input rows of each finished micro-batch, from the progress reports.', labelNames: ['job', 'usecase', 'variant'], buckets: BATCH_ROWS, registers });
    this.#runs = new Counter({ name: 'diamond_runs_total', help: 'Function runs that reached a state (queued, running, finished, failed, cancelled, timed-out), by function.', labelNames: ['function', 'state'], registers });
    this.#runDuration = new Histogram({ name: 'diamond_run_duration_seconds', help: "Each ended function run's time from started (from queued when it never started) to its end.", labelNames: ['function'], buckets: RUN_SECONDS, registers });
    this.#rows = new Counter({ name: 'diamond_job_rows_total', help: 'Rows of finished micro-batches by kind: in (read), out (feedback written), rejected.', labelNames: ['job', 'usecase', 'variant', 'kind'], registers });
  }

  /** Where the state and lag gauges read the jobs from (the control API sets it). */
  watchJobs(source: () => Promise<JobSnapshot[]>): void {
    this.#source = source;
  }

  /** Where the alerts gauge reads the firing counts from (the reconciler and the control API set it). */
  watchAlerts(source: () => Promise<Record<AlertRuleName, number>>): void {
    this.#alerts = source;
  }

  /** Where the pool gauges read the pool from (the control API sets it). */
  watchPool(source: () => Promise<PoolSnapshot>): void {
    this.#pool = source;
  }

  /** Where the active runs gauge reads them from (the control API sets it). */
  watchActiveRuns(source: () => Promise<{ queued: number; running: number }>): void {
    this.#activeRuns = source;
  }

  countRestart(job: { jobId: string; usecase: string; variant: string }, reason: 'crash' | 'outage'): void {
    this.#restarts.inc({ job: job.jobId, usecase: job.usecase, variant: job.variant, reason });
  }

  /** One verified progress report of a finished batch. */
  observeBatch(message: ProgressMessage): void {
    const labels = { job: message.job, usecase: message.usecase, variant: message.variant };
    const millis = message.durations_ms?.['triggerExecution'];
    if (millis !== undefined) this.#batchDuration.observe(labels, millis / 1000);
    if (message.rows_in !== undefined) this.#batchRows.observe(labels, message.rows_in);
    for (const [kind, rows] of [['in', message.rows_in], ['out', message.rows_out], ['rejected', message.rows_rejected]] as const) {
      if (rows !== undefined) this.#rows.inc({ ...labels, kind }, rows);
    }
  }

  /** RunObserver (run-dispatcher.ts). */
  countRun(functionName: string, state: string): void {
    this.#runs.inc({ function: functionName, state });
  }

  observeRunDuration(functionName: string, seconds: number): void {
    this.#runDuration.observe({ function: functionName }, seconds);
  }

  #jobs(): Promise<JobSnapshot[]> {
    const source = this.#source;
    if (!source) return Promise.resolve([]);
    // Redis down: no job series, the scrape still answers.
    this.#reading ??= source().catch((): JobSnapshot[] => []).finally(() => { this.#reading = null; });
    return this.#reading;
  }
}
