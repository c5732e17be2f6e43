/**
 * The feedback writer: `feedback.raw` → Cassandra, with the A/B post-filter.
 *
 *   const writer = new FeedbackWriter({ kafka, registry, cassandra, rollouts, logger });
 *   await writer.start();
 *
 * For each batch: decode every message (any registered writer version), send the
 * undecodable ones to `feedback.rejected`, write every row to `feedback_by_variant`, and
 * the rows of the variant each customer is assigned to (weights read from Redis for this
 * batch) to `feedback_by_customer`. Rows are upserts keyed by feedback_id, and offsets are
 * committed only after Cassandra acknowledged the batch (see DurableConsumer), so a crash,
 * a replay or an overlapping upgrade all end with exactly one row per feedback.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Partitioners, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import type { CassandraClient } from '../shared/cassandra.ts';
import type { Logger } from '../shared/logger.ts';
import type { Feedback } from '../shared/schemas.ts';
import { Topics } from '../shared/topics.ts';
import { bucketOf, variantForBucket, type Weights } from './assign-variant.ts';
import { utcDay, WritePool, type Statement } from './cassandra-rows.ts';
import { DurableConsumer, type BatchContext } from './durable-consumer.ts';
import { toFeedback } from './feedback-contract.ts';
import { DownstreamMetrics } from './downstream-metrics.ts';
import { VARIANT_SHARDS } from './migrations.ts';
import { rejectPoisonTo, sendRejections, type Rejection } from './rejections.ts';
import type { RolloutStore } from './rollout-store.ts';
import { decodeWire } from './wire-decoder.ts';

import { FEEDBACK_WRITER_GROUP } from '../shared/topics.ts';

export { FEEDBACK_WRITER_GROUP };

/** Messages decoded before their writes are handed to the pool. */
const CHUNK = 256;

export interface FeedbackWriterOptions {
  readonly kafka: Kafka;
  readonly registry: SchemaRegistry;
  /** Connected client; statements name the keyspace explicitly. */
  readonly cassandra: CassandraClient;
  readonly rollouts: RolloutStore;
  readonly logger: Logger;
  readonly keyspace: string;
  readonly topic?: string;
  readonly rejectedTopic?: string;
  readonly groupId?: string;
  /** Default: its own registry. startDownstream shares one between the writers and the API. */
  readonly metrics?: DownstreamMetrics;
  /** The consumer stopped for good (see DurableConsumer.onFatal). */
  readonly onFatal?: (error: Error) => void;
  /** Cassandra writes in flight per partition batch. */
  readonly concurrency?: number;
  /** Called with the rows delivered to customers, after Cassandra acknowledged them (live stream). */
  readonly onDelivered?: (rows: readonly Feedback[]) => void;
}

const columns = 'feedback_id, customer_id, usecase, variant, version, kind, severity, score, message, details, record_ids, event_time, produced_at, written_at';
const values = (feedback: Feedback, now: Date): unknown[] => [
  feedback.feedback_id, feedback.customer_id, feedback.usecase, feedback.variant, feedback.version, feedback.kind, feedback.severity,
  feedback.score, feedback.message, feedback.details, feedback.record_ids, new Date(feedback.event_time), new Date(feedback.produced_at), now,
];

export class FeedbackWriter {
  readonly metrics: DownstreamMetrics;
  readonly #options: FeedbackWriterOptions;
  readonly #consumer: DurableConsumer;
  readonly #producer: Producer;
  readonly #insertByVariant: string;
  readonly #insertByCustomer: string;
  readonly #rejectedTopic: string;

  constructor(options: FeedbackWriterOptions) {
    this.#options = options;
    this.metrics = options.metrics ?? new DownstreamMetrics();
    const ks = options.keyspace;
    this.#insertByVariant = `INSERT INTO ${ks}.feedback_by_variant (day, shard, ${columns}) VALUES (?, ?, ${columns.split(',').map(() => '?').join(', ')})`;
    this.#insertByCustomer = `INSERT INTO ${ks}.feedback_by_customer (day, ${columns}) VALUES (?, ${columns.split(',').map(() => '?').join(', ')})`;
    this.#rejectedTopic = options.rejectedTopic ?? Topics.rejectedFeedback;
    this.#producer = options.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const logger = options.logger.child({ component: 'feedback-writer' });
    this.#consumer = new DurableConsumer({
      kafka: options.kafka,
      topic: options.topic ?? Topics.rawFeedback,
      groupId: options.groupId ?? FEEDBACK_WRITER_GROUP,
      logger,
      handle: (messages, context) => this.#writeBatch(messages, context),
      onCommitted: ({ topic, partition, messages }) => this.metrics.feedbackMessages.inc({ topic, partition: String(partition) }, messages),
      onFatal: options.onFatal,
      onRetry: () => this.metrics.feedbackRetries.inc(),
      poison: rejectPoisonTo(this.#producer, this.#rejectedTopic, 'downstream.feedback-writer'),
      onPoison: () => this.metrics.feedbackRejected.inc(),
    });
  }

  /** Resolves when the writer joined its consumer group. */
  get joined(): Promise<void> {
    return this.#consumer.joined;
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    await this.#consumer.start();
  }

  async stop(): Promise<void> {
    await this.#consumer.stop();
    await this.#producer.disconnect();
  }

  async #writeBatch(messages: readonly KafkaMessage[], { topic, partition }: BatchContext): Promise<void> {
    const timer = this.metrics.batchDuration.startTimer({ writer: 'feedback' });
    // Decoding runs in chunks while the writes of earlier chunks are in flight.
    const pool = new WritePool(this.#options.cassandra, this.#options.concurrency ?? 128);
    const rejections: Rejection[] = [];
    const delivered: Feedback[] = [];
    const weights = new Map<string, Weights | null>();
    const now = new Date();
    const written: Feedback[] = [];
    for (let start = 0; start < messages.length; start += CHUNK) {
      const rows: Feedback[] = [];
      for (const message of messages.slice(start, start + CHUNK)) {
        const decoded = await decodeWire(this.#options.registry, message.value);
        const checked = decoded.ok ? toFeedback(decoded.value) : decoded;
        if (checked.ok) rows.push(checked.value);
        else rejections.push({ reason: checked.reason, topic, partition, message });
      }
      const unknown = rows.map((row) => row.usecase).filter((usecase) => !weights.has(usecase));
      if (unknown.length > 0) for (const [usecase, value] of await this.#options.rollouts.getMany(unknown)) weights.set(usecase, value);
      const statements: Statement[] = [];
      for (const row of rows) {
        const bucket = bucketOf(row.customer_id, row.usecase);
        const day = utcDay(row.event_time);
        statements.push({ query: this.#insertByVariant, params: [day, bucket % VARIANT_SHARDS, ...values(row, now)] });
        const usecaseWeights = weights.get(row.usecase);
        // No weights stored: a single-variant use case, delivered as is.
        if (!usecaseWeights || variantForBucket(bucket, usecaseWeights) === row.variant) {
          statements.push({ query: this.#insertByCustomer, params: [day, ...values(row, now)] });
          delivered.push(row);
        }
      }
      written.push(...rows);
      pool.add(statements);
    }
    await sendRejections(this.#producer, this.#rejectedTopic, 'downstream.feedback-writer', rejections);
    await pool.drain();

    timer();
    this.metrics.batchRows.observe({ writer: 'feedback' }, written.length);
    this.metrics.feedbackRows.inc({ table: 'feedback_by_variant' }, written.length);
    this.metrics.feedbackRows.inc({ table: 'feedback_by_customer' }, delivered.length);
    this.#observeEndToEnd(written, Date.now());
    if (rejections.length > 0) {
      this.metrics.feedbackRejected.inc(rejections.length);
      this.#options.logger.warn({ topic, partition, rejected: rejections.length, firstReason: rejections[0]?.reason }, 'undecodable feedback sent to rejected topic');
    }
    if (delivered.length > 0) this.#options.onDelivered?.(delivered);
  }

  /** Ingest → row of each row whose records this process saw ingested (ingest-times.ts). */
  #observeEndToEnd(rows: readonly Feedback[], writtenAt: number): void {
    for (const row of rows) {
      const ingestedAt = this.metrics.ingestTimes.earliest(row.record_ids);
      if (ingestedAt !== null) this.metrics.endToEnd.observe({ usecase: row.usecase, variant: row.variant }, Math.max(0, writtenAt - ingestedAt) / 1000);
    }
  }
}
