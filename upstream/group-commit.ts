/**
 * Group commit for the ingest producer: batches that arrive while a Kafka request is in
 * flight wait and go out together in the next request, one `sendBatch` for all of them. An
 * idle pipeline sends at once (no linger, so no added latency at low load); a busy one pays
 * one round trip per group instead of one per HTTP request. Every caller still learns the
 * outcome of the request its messages were in, and hears "yes" only after Kafka's ack.
 *
 * A group holds at most `maxGroupBytes` of message values, so no request grows past what the
 * broker takes (message.max.bytes is per partition's record batch, 1 MiB by default); a
 * batch larger than that on its own goes alone, as before.
 */
import type { Message, Producer } from 'kafkajs';

export interface TopicMessages {
  readonly topic: string;
  readonly messages: Message[];
}

interface Waiter {
  readonly topicMessages: readonly TopicMessages[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const valueBytes = (topicMessages: readonly TopicMessages[]): number => topicMessages.reduce((sum, t) => sum + t.messages.reduce((s, m) => s + (m.value?.length ?? 0), 0), 0);

export class GroupCommitProducer {
  #queue: Waiter[] = [];
  #sending = false;
  /** Requests sent and batches they carried, for the metrics and the bench. */
  requests = 0;
  batches = 0;

  constructor(private readonly producer: Pick<Producer, 'sendBatch'>, private readonly maxGroupBytes = 512 * 1024) {}

  /** Resolves once Kafka acknowledged (acks=all) the request that carried these messages. */
  send(topicMessages: readonly TopicMessages[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ topicMessages, bytes: valueBytes(topicMessages), resolve, reject });
      if (!this.#sending) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#queue.length > 0) {
        const group = this.#takeGroup();
        const byTopic = new Map<string, Message[]>();
        for (const waiter of group) {
          for (const { topic, messages } of waiter.topicMessages) {
            const list = byTopic.get(topic) ?? [];
            for (const message of messages) list.push(message);
            byTopic.set(topic, list);
          }
        }
        this.requests += 1;
        this.batches += group.length;
        try {
          await this.producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
          for (const waiter of group) waiter.resolve();
        } catch (error) {
          for (const waiter of group) waiter.reject(error);
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  /** The oldest waiter, then as many next ones (in order) as fit in maxGroupBytes. */
  #takeGroup(): Waiter[] {
    const group = [this.#queue.shift()!];
    let bytes = group[0]!.bytes;
    while (this.#queue.length > 0 && bytes + this.#queue[0]!.bytes <= this.maxGroupBytes) {
      const next = this.#queue.shift()!;
      bytes += next.bytes;
      group.push(next);
    }
    return group;
  }
}
