/**
 * normalize → produce, shared by every ingest path. One call takes a batch of raw items
 * from one source and writes the good ones to records.normalized (Avro, Confluent wire
 * format, key customer_id) and the bad ones to records.rejected, in one Kafka request.
 *
 * Guarantee: `process()` resolves only after Kafka acknowledged every message of the batch
 * (idempotent producer, acks from all in-sync replicas). When Kafka does not answer in
 * time it rejects with KafkaWriteError and the caller must not acknowledge anything; when
 * too much is already waiting for Kafka it rejects at once with BackpressureError.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Message, Producer } from 'kafkajs';
import { BackpressureError, KafkaWriteError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { CustomerRecord } from '../shared/schemas.ts';
import { Topics } from '../shared/topics.ts';
import type { SourceMapping } from './mapping.ts';
import { normalizeRecord, type Reason } from './normalize.ts';
import { rejectedEnvelope, type RejectedEnvelope } from './rejected.ts';
import type { RawItem } from './split.ts';

export interface PipelineTopics {
  readonly normalized: string;
  readonly rejected: string;
}

export const DEFAULT_TOPICS: PipelineTopics = { normalized: Topics.normalizedRecords, rejected: Topics.rejectedRecords };

export interface PipelineOptions {
  readonly producer: Producer;
  /** Encodes a CustomerRecord to Avro with the registered schema id in front. */
  readonly encoder: RecordEncoder;
  readonly topics?: PipelineTopics;
  readonly logger: Logger;
  /** Messages allowed to wait for Kafka at once before new batches get BackpressureError. */
  readonly maxInFlightMessages?: number;
  /** How long a batch may wait for Kafka's acknowledgement before the caller hears "no". */
  readonly produceTimeoutMs?: number;
  /** Largest record as received; larger ones are rejected with their reason (config.upstream.maxRecordBytes). */
  readonly maxRecordBytes?: number;
  readonly clock?: () => number;
}

/** The default of DIAMOND_RECORD_MAX_BYTES. */
export const DEFAULT_MAX_RECORD_BYTES = 256 * 1024;

export interface SourceRef {
  readonly name: string;
  readonly mapping: SourceMapping;
}

export interface BatchResult {
  readonly accepted: number;
  /** Index within the batch and every reason, per rejected item. */
  readonly rejected: readonly { readonly index: number; readonly reasons: readonly Reason[] }[];
}

export interface RecordEncoder {
  readonly schemaId: number;
  encode(record: CustomerRecord): Buffer;
}

/** The avsc Type behind the registry's schema object (not in its declared type): encodes into a given buffer. */
interface EncodesInPlace {
  encode(value: unknown, buffer: Buffer, position: number): number;
}

const SLAB_BYTES = 1024 * 1024;

/**
 * Confluent wire format with a schema fetched once: magic 0, 4-byte id, Avro body. Records
 * are encoded straight into 1 MiB slabs and handed out as views, which saves two buffer
 * allocations and a copy per record (they showed up in the bench profile).
 */
export async function createRecordEncoder(registry: SchemaRegistry, schemaId: number): Promise<RecordEncoder> {
  const schema = await registry.getSchema(schemaId);
  const inPlace = typeof (schema as Partial<EncodesInPlace>).encode === 'function' ? (schema as unknown as EncodesInPlace) : null;
  let slab = Buffer.allocUnsafe(SLAB_BYTES);
  let offset = 0;
  const writeHeader = (buffer: Buffer, at: number): void => {
    buffer.writeUInt8(0, at);
    buffer.writeUInt32BE(schemaId, at + 1);
  };
  const encode = (record: CustomerRecord): Buffer => {
    if (inPlace) {
      let end = offset + 5 <= slab.length ? inPlace.encode(record, slab, offset + 5) : -1;
      if (end < 0 && offset > 0) {
        slab = Buffer.allocUnsafe(SLAB_BYTES);
        offset = 0;
        end = inPlace.encode(record, slab, 5);
      }
      if (end >= 0) {
        writeHeader(slab, offset);
        const view = slab.subarray(offset, end);
        offset = end;
        return view;
      }
    }
    const body = schema.toBuffer(record); // larger than a slab, or no in-place encoder
    const framed = Buffer.allocUnsafe(body.length + 5);
    writeHeader(framed, 0);
    body.copy(framed, 5);
    return framed;
  };
  return { schemaId, encode };
}

export class RecordPipeline {
  readonly topics: PipelineTopics;
  #inFlight = 0;
  #lastWriteFailed = false;
  readonly #options: PipelineOptions;
  readonly #maxInFlight: number;
  readonly #timeoutMs: number;
  readonly #clock: () => number;
  readonly #maxRecordBytes: number;

  constructor(options: PipelineOptions) {
    this.#options = options;
    this.topics = options.topics ?? DEFAULT_TOPICS;
    this.#maxInFlight = options.maxInFlightMessages ?? 200_000;
    this.#timeoutMs = options.produceTimeoutMs ?? 10_000;
    this.#clock = options.clock ?? Date.now;
    this.#maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  }

  /** False after a batch Kafka did not acknowledge, until the next one it does. */
  get writing(): boolean {
    return !this.#lastWriteFailed;
  }

  /** Messages waiting for Kafka right now (metrics). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Normalizes and writes one batch. `location(index)` says where each item came from
   * (request index, file line, topic offset) for the rejected envelope.
   */
  async process(source: SourceRef, items: readonly RawItem[], via: RejectedEnvelope['via'], location: (index: number) => Record<string, string | number>): Promise<BatchResult> {
    if (items.length === 0) return { accepted: 0, rejected: [] };
    if (this.#inFlight > 0 && this.#inFlight + items.length > this.#maxInFlight) {
      throw new BackpressureError(`${this.#inFlight} messages are already waiting for Kafka (limit ${this.#maxInFlight})`);
    }
    const now = this.#clock();
    const normalized: Message[] = [];
    const rejectedMessages: Message[] = [];
    const rejected: { index: number; reasons: readonly Reason[] }[] = [];
    items.forEach((item, index) => {
      const result = item.raw.length > this.#maxRecordBytes
        ? { ok: false as const, reasons: [{ field: '(record)', problem: `is ${item.raw.length} bytes; at most ${this.#maxRecordBytes} are accepted per record (DIAMOND_RECORD_MAX_BYTES)` }] }
        : item.parsed ? normalizeRecord(item.value, { source: source.name, mapping: source.mapping, ingestedAt: now }) : { ok: false as const, reasons: item.reasons };
      if (result.ok) {
        normalized.push({ key: result.record.customer_id, value: this.#options.encoder.encode(result.record) });
        return;
      }
      rejected.push({ index, reasons: result.reasons });
      const envelope = rejectedEnvelope({ source: source.name, receivedAt: now, via, location: location(index), reasons: result.reasons, raw: item.raw });
      rejectedMessages.push({ key: source.name, value: JSON.stringify(envelope) });
    });
    const topicMessages = [
      ...(normalized.length > 0 ? [{ topic: this.topics.normalized, messages: normalized }] : []),
      ...(rejectedMessages.length > 0 ? [{ topic: this.topics.rejected, messages: rejectedMessages }] : []),
    ];
    await this.#send(topicMessages, items.length);
    return { accepted: normalized.length, rejected };
  }

  async #send(topicMessages: { topic: string; messages: Message[] }[], count: number): Promise<void> {
    this.#inFlight += count;
    // The send keeps retrying after a timeout (the idempotent producer retries without a
    // limit); its messages stay counted until it settles, which is what bounds memory
    // while Kafka is down.
    const sending = this.#options.producer.sendBatch({ topicMessages, acks: -1 }).finally(() => {
      this.#inFlight -= count;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KafkaWriteError(`Kafka did not acknowledge ${count} messages within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      await Promise.race([sending, timeout]);
      this.#lastWriteFailed = false;
    } catch (error) {
      this.#lastWriteFailed = true;
      sending.catch((late: unknown) => this.#options.logger.warn({ err: late }, 'a timed-out batch finally failed'));
      if (error instanceof KafkaWriteError) throw error;
      throw new KafkaWriteError(`Kafka refused ${count} messages: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}
