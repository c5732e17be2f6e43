/**
 * The raw-topic normalizer: a consumer group on `records.raw.<source>` topics that runs each
 * message (the source's own JSON) through the shared pipeline.
 *
 *   const normalizer = new RawTopicNormalizer({ kafka, pipeline, sources, logger });
 *   await normalizer.start();
 *
 * Offsets are committed only after Kafka acknowledged the normalized records and the
 * rejected envelopes of the messages before them, so a crash replays, never skips (and
 * replays write the same record ids). The source is the topic's suffix; a source without a
 * stored mapping is read with the default mapping.
 */
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { BackpressureError, KafkaWriteError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { Topics } from '../shared/topics.ts';
import { resolveMapping } from './mapping.ts';
import type { RecordPipeline, SourceRef } from './pipeline.ts';
import type { SourceStore } from './sources.ts';
import { parseItem, type RawItem } from './split.ts';

export const RAW_TOPIC_PREFIX = Topics.rawRecords('');
export const RAW_NORMALIZER_GROUP = 'diamond.upstream.raw-normalizer';

export interface RawTopicNormalizerOptions {
  readonly kafka: Kafka;
  readonly pipeline: RecordPipeline;
  readonly sources: SourceStore;
  readonly logger: Logger;
  readonly groupId?: string;
  /** Topics to read; default every existing `records.raw.*` topic (matched when the consumer starts). */
  readonly topics?: RegExp | readonly string[];
  /** Messages per pipeline call (and per commit). */
  readonly chunkSize?: number;
}

export class RawTopicNormalizer {
  readonly #options: RawTopicNormalizerOptions;
  readonly #consumer: Consumer;

  constructor(options: RawTopicNormalizerOptions) {
    this.#options = options;
    this.#consumer = options.kafka.consumer({ groupId: options.groupId ?? RAW_NORMALIZER_GROUP, allowAutoTopicCreation: false });
  }

  async start(): Promise<void> {
    const topics = this.#options.topics ?? new RegExp(`^${RAW_TOPIC_PREFIX.replaceAll('.', '\\.')}.+`);
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: topics instanceof RegExp ? [topics] : [...topics], fromBeginning: true });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        const running = (): boolean => payload.isRunning() && !payload.isStale();
        const source = await this.#sourceOf(batch.topic);
        const chunkSize = this.#options.chunkSize ?? 1_000;
        for (let start = 0; start < batch.messages.length; start += chunkSize) {
          if (!running()) return;
          const messages = batch.messages.slice(start, start + chunkSize);
          const location = (index: number): Record<string, string | number> => ({ topic: batch.topic, partition: batch.partition, offset: messages[index]?.offset ?? '' });
          if (!(await this.#processWithRetry(source, messages.map(toRawItem), location, running))) return;
          const next = (BigInt(messages[messages.length - 1]?.offset ?? '0') + 1n).toString();
          await this.#consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
          await payload.heartbeat();
        }
      },
    });
  }

  async stop(): Promise<void> {
    await this.#consumer.disconnect();
  }

  async #sourceOf(topic: string): Promise<SourceRef> {
    const name = topic.slice(RAW_TOPIC_PREFIX.length);
    return (await this.#options.sources.find(name)) ?? { name, mapping: resolveMapping() };
  }

  /**
   * Kafka being down is waited out here: the chunk is not committed until it is written.
   * False when the consumer stopped first (then nothing is committed and the chunk is replayed).
   */
  async #processWithRetry(source: SourceRef, items: RawItem[], location: (index: number) => Record<string, string | number>, running: () => boolean): Promise<boolean> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#options.pipeline.process(source, items, 'raw-topic', location);
        return true;
      } catch (error) {
        if (!(error instanceof KafkaWriteError || error instanceof BackpressureError)) throw error;
        if (!running()) return false;
        const waitMs = Math.min(5_000, 250 * 2 ** attempt);
        this.#options.logger.warn({ err: error, attempt, waitMs, source: source.name }, 'Kafka did not acknowledge normalized records; retrying before committing');
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }
}

function toRawItem(message: KafkaMessage): RawItem {
  if (message.value === null) return { raw: Buffer.alloc(0), parsed: false, reasons: [{ field: '(record)', problem: 'the message has no value (a tombstone)' }] };
  return parseItem(message.value);
}
