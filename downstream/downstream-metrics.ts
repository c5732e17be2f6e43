/**
 * Downstream's series (the writers and the feedback API), on one prom-client registry per
 * process. Names follow Prometheus' conventions: base units, `_total` counters, `_seconds`
 * histograms. The list with types and labels is in docs/OPERATING.md.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { createMetricsRegistry, type MetricsRegistry } from '../shared/metrics/registry.ts';
import { IngestTimes } from './ingest-times.ts';

export type WriterName = 'feedback' | 'history';

/** Seconds of one partition batch: a few rows in milliseconds, a catch-up batch in seconds. */
const BATCH_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_ROWS = [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000];
/** Ingest → row spans the job's trigger interval and its batch: seconds to minutes. */
const END_TO_END_SECONDS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

export class DownstreamMetrics {
  readonly registry: MetricsRegistry;
  readonly ingestTimes = new IngestTimes();
  readonly feedbackMessages: Counter<'topic' | 'partition'>;
  readonly feedbackRetries: Counter;
  readonly feedbackRejected: Counter;
  readonly feedbackRows: Counter<'table'>;
  readonly endToEnd: Histogram<'usecase' | 'variant'>;
  readonly historyMessages: Counter;
  readonly historyRetries: Counter;
  readonly historyRejected: Counter;
  readonly historyRows: Counter;
  readonly batchDuration: Histogram<'writer'>;
  readonly batchRows: Histogram<'writer'>;
  readonly apiStreams: Gauge;

  constructor(registry: MetricsRegistry = createMetricsRegistry()) {
    this.registry = registry;
    const registers = [registry];
    this.feedbackMessages = new Counter({ name: 'diamond_feedback_messages_total', help: 'Messages of feedback.raw committed, by topic and partition.', labelNames: ['topic', 'partition'], registers });
    this.feedbackRetries = new Counter({ name: 'diamond_feedback_batch_retries_total', help: 'Feedback batches retried because Cassandra, Redis or the registry failed.', registers });
    this.feedbackRejected = new Counter({ name: 'diamond_feedback_rejected_total', help: 'Feedback messages sent to feedback.rejected.', registers });
    this.feedbackRows = new Counter({ name: 'diamond_feedback_rows_written_total', help: 'Feedback rows acknowledged by Cassandra, by table.', labelNames: ['table'], registers });
    this.endToEnd = new Histogram({ name: 'diamond_feedback_end_to_end_seconds', help: 'From upstream accepting a record (ingested_at) to Cassandra acknowledging the feedback row about it, by use case and variant.', labelNames: ['usecase', 'variant'], buckets: END_TO_END_SECONDS, registers });
    this.historyMessages = new Counter({ name: 'diamond_history_messages_total', help: 'Messages of records.normalized committed.', registers });
    this.historyRetries = new Counter({ name: 'diamond_history_batch_retries_total', help: 'History batches retried.', registers });
    this.historyRejected = new Counter({ name: 'diamond_history_rejected_total', help: 'Records sent to records.rejected by the history writer.', registers });
    this.historyRows = new Counter({ name: 'diamond_history_rows_written_total', help: 'History rows acknowledged by Cassandra.', registers });
    this.batchDuration = new Histogram({ name: 'diamond_writer_batch_duration_seconds', help: 'Time to write one partition batch to Cassandra (decode, write, acknowledge), by writer.', labelNames: ['writer'], buckets: BATCH_SECONDS, registers });
    this.batchRows = new Histogram({ name: 'diamond_writer_batch_rows', help: 'Rows per partition batch written, by writer.', labelNames: ['writer'], buckets: BATCH_ROWS, registers });
    this.apiStreams = new Gauge({ name: 'diamond_feedback_api_streams', help: 'Open server-sent event streams of the feedback API.', registers });
  }
}
