/**
 * The history writer: `records.normalized` → `records_by_customer` (60 days per customer).
 * Same guarantees as the feedback writer: upserts keyed by record_id, offsets committed
 * only after Cassandra acknowledged, undecodable messages to `records.rejected`.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Partitioners, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import type { CassandraClient } from '../shared/cassandra.ts';
import type { Logger } from '../shared/logger.ts';
import type { CustomerRecord } from '../shared/schemas.ts';
import { Topics } from '../shared/topics.ts';
import { executeAll, utcDay, type Statement } from './cassandra-rows.ts';
import { DurableConsumer, type BatchContext } from './durable-consumer.ts';
import { toCustomerRecord } from './feedback-contract.ts';
import { DownstreamMetrics } from './downstream-metrics.ts';
import { rejectPoisonTo, sendRejections, type Rejection } from './rejections.ts';
import { decodeWire } from './wire-decoder.ts';

export const HISTORY_WRITER_GROUP = 'downstream.history-writer';

export interface HistoryWriterOptions {
  readonly kafka: Kafka;
  readonly registry: SchemaRegistry;
  readonly cassandra: CassandraClient;
  readonly logger: Logger;
  readonly keyspace: string;
  readonly topic?: string;
  readonly rejectedTopic?: string;
  readonly groupId?: string;
  /** Default: its own registry. startDownstream shares one between the writers and the API. */
  readonly metrics?: DownstreamMetrics;
  /** The consumer stopped for good (see DurableConsumer.onFatal). */
  readonly onFatal?: (error: Error) => void;
  readonly concurrency?: number;
}

export class HistoryWriter {
  readonly metrics: DownstreamMetrics;
  readonly #options: HistoryWriterOptions;
  readonly #consumer: DurableConsumer;
  readonly #producer: Producer;
  readonly #insert: string;

  constructor(options: HistoryWriterOptions) {
    this.#options = options;
    this.metrics = options.metrics ?? new DownstreamMetrics();
    this.#insert = `INSERT INTO ${options.keyspace}.records_by_customer (customer_id, day, event_time, record_id, source, type, amount, currency, attributes, ingested_at, written_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    this.#producer = options.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    this.#consumer = new DurableConsumer({
      kafka: options.kafka,
      topic: options.topic ?? Topics.normalizedRecords,
      groupId: options.groupId ?? HISTORY_WRITER_GROUP,
      logger: options.logger.child({ component: 'history-writer' }),
      handle: (messages, context) => this.#writeBatch(messages, context),
      onCommitted: ({ messages }) => this.metrics.historyMessages.inc(messages),
      onFatal: options.onFatal,
      onRetry: () => this.metrics.historyRetries.inc(),
      poison: rejectPoisonTo(this.#producer, options.rejectedTopic ?? Topics.rejectedRecords, 'downstream.history-writer'),
      onPoison: () => this.metrics.historyRejected.inc(),
    });
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
    const timer = this.metrics.batchDuration.startTimer({ writer: 'history' });
    const rows = new Map<string, CustomerRecord>();
    const rejections: Rejection[] = [];
    for (const message of messages) {
      const decoded = await decodeWire(this.#options.registry, message.value);
      const checked = decoded.ok ? toCustomerRecord(decoded.value) : decoded;
      if (checked.ok) rows.set(`${checked.value.customer_id}\0${checked.value.record_id}`, checked.value);
      else rejections.push({ reason: checked.reason, topic, partition, message });
    }
    await sendRejections(this.#producer, this.#options.rejectedTopic ?? Topics.rejectedRecords, 'downstream.history-writer', rejections);
    const now = new Date();
    const statements: Statement[] = [...rows.values()].map((r) => ({
      query: this.#insert,
      params: [r.customer_id, utcDay(r.event_time), new Date(r.event_time), r.record_id, r.source, r.type, r.amount, r.currency, r.attributes, new Date(r.ingested_at), now],
    }));
    await executeAll(this.#options.cassandra, statements, this.#options.concurrency ?? 64);
    timer();
    this.metrics.batchRows.observe({ writer: 'history' }, statements.length);
    this.metrics.historyRows.inc(statements.length);
    for (const record of rows.values()) this.metrics.ingestTimes.note(record.record_id, record.ingested_at);
    if (rejections.length > 0) this.metrics.historyRejected.inc(rejections.length);
  }
}
