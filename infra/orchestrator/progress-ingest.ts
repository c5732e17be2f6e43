/**
 * Progress ingestion: the orchestrator's consumer of diamond.progress. Each report of a
 * finished batch commits the job's end offsets to its consumer group (never backwards, and
 * never from before a replay's fence) and notes which version reported; failures are kept
 * for the crash message. Jobs never commit offsets themselves, so a restart begins after
 * the last batch the job finished.
 *
 * Any local process can write to diamond.progress, so a message counts only when it is signed
 * by a live launch of its job (progress-signature.ts; the keys are in the job record) and its
 * end offsets lie within the partitions' high watermarks; anything else is ignored with a
 * warning and commits nothing.
 */
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../shared/logger.ts';
import { parseProgressMessage } from '../../shared/messages.ts';
import { commitJobOffsets } from './offsets.ts';
import { verifyProgress } from './progress-signature.ts';
import type { RecentBatches } from './alert-rules.ts';
import type { OrchestratorMetrics } from './orchestrator-metrics.ts';
import type { OrchestratorOptions } from './options.ts';
import type { DeploymentStore } from './store.ts';

export class ProgressIngest {
  private consumer: Consumer | null = null;

  /** `admin` must be connected; it commits the offsets. */
  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly store: DeploymentStore,
    private readonly options: Pick<OrchestratorOptions, 'jobPrefix' | 'progressGroup' | 'topics'>,
    private readonly log: Logger,
    /** Batch durations and rows per job (absent: not measured, e.g. the shutdown drain). */
    private readonly metrics?: OrchestratorMetrics,
    /** Recent batch durations for the batch-p99 alert (absent: not kept). */
    private readonly batches?: RecentBatches,
  ) {}

  /** Consumes the progress topic in the orchestrator's group until `stop()`. */
  async start(): Promise<void> {
    // A short fetch wait: stop() (and a lost lease) would otherwise wait out kafkajs' 5 s default.
    const consumer = this.kafka.consumer({ groupId: this.options.progressGroup, maxWaitTimeInMs: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic: this.options.topics.progress, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { if (message.value) await this.handle(message.value.toString()); } });
    this.consumer = consumer;
  }

  /**
   * Leaves the group. Bounded: a disconnect during a rebalance can wait out the group's
   * rebalance timeout, and a stopping orchestrator must exit within its stop grace; what
   * this consumer handled is committed by then, and the group coordinator notices the rest.
   */
  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = null;
    if (!consumer) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn({ group: this.options.progressGroup }, 'progress consumer did not leave its group within 5 s; going on');
        resolve();
      }, 5_000);
      timer.unref();
    });
    await Promise.race([consumer.disconnect().catch(() => undefined), bound]);
    clearTimeout(timer);
  }

  /** One progress message: commit its end offsets to the job's group, note who reported. */
  async handle(raw: string): Promise<void> {
    // The contract (shared/schemas/progress.schema.json) is checked here: a malformed
    // report is skipped with the field that is wrong, never half-applied.
    const parsed = parseProgressMessage(raw);
    if (!parsed.ok) {
      this.log.warn({ field: parsed.field, problem: parsed.problem, progress: { raw: raw.slice(0, 200) } }, `ignored a malformed progress message: ${parsed.field} ${parsed.problem}`);
      return;
    }
    const message = parsed.message;
    const jobId = message.job;
    if (!jobId.startsWith(`${this.options.jobPrefix}uc.`)) return; // another orchestrator's jobs
    if (!verifyProgress(raw, await this.liveKeys(jobId))) {
      this.log.warn({ job: jobId, event: message.event, signed: message.signature !== undefined, progress: { raw: raw.slice(0, 200) } }, 'ignored a progress message not signed by a live launch of its job');
      return;
    }
    // The runner's own timestamp: a late-consumed report of a killed process must not
    // count for its successor of the same version, nor undo a replay.
    const stamped = Date.parse(message.at); // the schema checks its shape; an impossible date (month 13) still falls back
    const at = Number.isNaN(stamped) ? Date.now() : stamped;
    if (message.event === 'progress' && message.end_offsets) {
      if (at < await this.store.offsetFence(jobId)) {
        this.log.debug({ job: jobId, at: message.at }, 'ignored a progress report from before a replay');
        return;
      }
      const outcome = await commitJobOffsets(this.kafka, this.admin, jobId, this.options.topics.input, message.end_offsets);
      if (!outcome.committed) {
        this.log.warn({ job: jobId, partition: outcome.partition, offset: outcome.offset, highWatermark: outcome.highWatermark }, 'ignored a progress report beyond the end of its partition; nothing committed');
        return;
      }
      if (Object.keys(outcome.advanced).length > 0) this.log.debug({ job: jobId, offsets: outcome.advanced }, 'committed');
      const moved = Object.keys(outcome.advanced).length > 0;
      await this.store.mergeMetrics(jobId, {
        recordsPerSecond: message.processed_rows_per_second ?? null, lastBatchAt: at,
        batchDurationMs: message.durations_ms?.['triggerExecution'] ?? null, batchRows: message.rows_in ?? null,
        ...(moved ? { committedAt: Date.now() } : {}),
      });
      this.metrics?.observeBatch(message);
      const millis = message.durations_ms?.['triggerExecution'];
      if (millis !== undefined) {
        this.batches?.observe(jobId, millis, Date.now());
        await this.store.recordBatchDuration(jobId, millis);
      }
    }
    if (message.event === 'started' && message.ui_url) await this.store.mergeMetrics(jobId, { sparkUiUrl: message.ui_url });
    if ((message.event === 'progress' || message.event === 'started') && message.version) {
      await this.store.markReported(jobId, message.version, at);
    }
    if (message.event === 'stopped' && message.version) await this.store.markStopped(jobId, message.version, at);
    if ((message.event === 'backfilling' || message.event === 'backfilled') && message.version) {
      await this.store.markReported(jobId, message.version, at); // a job at work: running, not stuck starting
      await this.store.mergeMetrics(jobId, { backfillingAt: at });
    }
    if (message.event === 'backfilled') {
      await this.store.putBackfillReport(jobId, {
        at, since: message.since ?? '', historyBatch: message.history_batch ?? 0, rowsIn: message.rows_in ?? 0, rowsOut: message.rows_out ?? 0,
        rowsRejected: message.rows_rejected ?? 0, durationMs: message.duration_ms ?? 0,
      });
    }
    if (message.event === 'failed') {
      const where = message.file ? ` (${message.file}:${message.line ?? '?'})` : '';
      await this.store.markFailure(jobId, { at, message: `${message.message ?? message.error ?? 'failed'}${where}` });
    }
  }

  /** The progress keys of the job's launches that may still report (current, upgrade, retiring). */
  private async liveKeys(jobId: string): Promise<string[]> {
    const record = await this.store.getJob(jobId);
    if (!record) return [];
    return [record.current, record.next, ...record.retiring.map((r) => r.job)].flatMap((job) => (job?.progressKey ? [job.progressKey] : []));
  }
}
