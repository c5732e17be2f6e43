/**
 * Progress ingestion: the orchestrator's consumer of diamond.progress. Each report of a
 * finished batch commits the job's end offsets to its consumer group (never backwards, and
 * never from before a replay's fence) and notes which version reported; failures are kept
 * for the crash message. Jobs never commit offsets themselves, so a restart begins after
 * the last batch the job finished.
 */
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../shared/logger.ts';
import { commitJobOffsets } from './offsets.ts';
import type { OrchestratorOptions } from './options.ts';
import type { DeploymentStore } from './store.ts';

interface ProgressMessage {
  readonly job?: string;
  readonly version?: string;
  readonly event?: string;
  readonly end_offsets?: Record<string, number>;
  readonly at?: string;
  readonly message?: string;
  readonly error?: string;
  readonly file?: string;
  readonly line?: number;
  readonly processed_rows_per_second?: number | null;
}

export class ProgressIngest {
  private consumer: Consumer | null = null;

  /** `admin` must be connected; it commits the offsets. */
  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly store: DeploymentStore,
    private readonly options: Pick<OrchestratorOptions, 'jobPrefix' | 'progressGroup' | 'topics'>,
    private readonly log: Logger,
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

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    this.consumer = null;
  }

  /** One progress message: commit its end offsets to the job's group, note who reported. */
  async handle(raw: string): Promise<void> {
    let message: ProgressMessage;
    try {
      message = JSON.parse(raw) as ProgressMessage;
    } catch {
      this.log.warn({ progress: { raw: raw.slice(0, 200) } }, 'ignored a progress message that is not JSON');
      return;
    }
    const jobId = message.job;
    if (!jobId || !jobId.startsWith(`${this.options.jobPrefix}uc.`)) return; // another orchestrator's jobs
    // The runner's own timestamp: a late-consumed report of a killed process must not
    // count for its successor of the same version, nor undo a replay.
    const parsed = Date.parse(message.at ?? '');
    const at = Number.isNaN(parsed) ? Date.now() : parsed;
    if (message.event === 'progress' && message.end_offsets) {
      if (at < await this.store.offsetFence(jobId)) {
        this.log.debug({ job: jobId, at: message.at }, 'ignored a progress report from before a replay');
        return;
      }
      const advanced = await commitJobOffsets(this.admin, jobId, this.options.topics.input, message.end_offsets);
      if (Object.keys(advanced).length > 0) this.log.debug({ job: jobId, offsets: advanced }, 'committed');
      await this.store.mergeMetrics(jobId, { recordsPerSecond: message.processed_rows_per_second ?? null, lastBatchAt: at });
    }
    if ((message.event === 'progress' || message.event === 'started') && message.version) {
      await this.store.markReported(jobId, message.version, at);
    }
    if (message.event === 'failed') {
      const where = message.file ? ` (${message.file}:${message.line ?? '?'})` : '';
      await this.store.markFailure(jobId, { at, message: `${message.message ?? message.error ?? 'failed'}${where}` });
    }
  }
}
