/**
 * `diamond topic tail <topic> [-n 10] [--follow] [--json]`: the last messages of a topic,
 * decoded: Confluent-framed Avro through the registry (records, feedback), JSON as JSON,
 * anything else as text (or base64 when it is not UTF-8). Reads without joining a consumer
 * group that stays behind: a throwaway group, deleted at the end.
 */
import { randomUUID } from 'node:crypto';
import type { Argv, CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { ServiceUnavailableError } from '../../shared/errors.ts';
import { createKafka } from '../../shared/kafka.ts';
import { createRegistry } from '../../shared/registry.ts';
import { abortOnSigint } from './control-client.ts';
import { jsonOption, printLine } from './output.ts';

interface Decoded {
  readonly encoding: 'avro' | 'json' | 'text' | 'base64' | 'null';
  readonly schemaId: number | null;
  readonly value: unknown;
}

async function decode(value: Buffer | null, registry: ReturnType<typeof createRegistry>): Promise<Decoded> {
  if (value === null) return { encoding: 'null', schemaId: null, value: null };
  if (value.length > 5 && value[0] === 0) {
    try {
      return { encoding: 'avro', schemaId: value.readInt32BE(1), value: await registry.decode(value) };
    } catch {
      // not registry-framed after all: shown below as bytes
    }
  }
  const text = value.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(value)) {
    try {
      return { encoding: 'json', schemaId: null, value: JSON.parse(text) as unknown };
    } catch {
      return { encoding: 'text', schemaId: null, value: text };
    }
  }
  return { encoding: 'base64', schemaId: null, value: value.toString('base64') };
}

const tail: CommandModule<object, { topic: string; lines: number; follow: boolean; json: boolean }> = {
  command: 'tail <topic>',
  describe: 'print the last messages of a topic, Avro decoded through the schema registry',
  builder: (y) => y
    .positional('topic', { type: 'string', demandOption: true })
    .option('lines', { alias: 'n', type: 'number', default: 10, describe: 'messages per partition from the end' })
    .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'then keep printing new ones (Ctrl-C stops)' })
    .option('json', { ...jsonOption, describe: 'one {topic, partition, offset, timestamp, key, encoding, schemaId, value} object per message' })
    .example('$0 topic tail records.rejected -n 5', 'the last rejected records, with their reasons'),
  handler: async ({ topic, lines, follow, json }) => {
    const config = loadConfig(process.env);
    const kafka = createKafka(config, { clientId: 'diamond-topic-tail' });
    const registry = createRegistry(config);
    const admin = kafka.admin();
    await admin.connect().catch((cause: unknown) => {
      throw new ServiceUnavailableError('Kafka', config.kafka.brokers.join(','), { cause });
    });
    const offsets = await admin.fetchTopicOffsets(topic);
    const starts = offsets.map((p) => ({ partition: p.partition, from: Math.max(Number(p.low), Number(p.high) - lines), end: Number(p.high) }));
    const pending = new Set(starts.filter((p) => p.end > p.from).map((p) => p.partition));
    const groupId = `diamond-topic-tail-${randomUUID()}`;
    const consumer = kafka.consumer({ groupId });
    const controller = abortOnSigint();
    try {
      if (pending.size === 0 && !follow) return;
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: false });
      const done = new Promise<void>((resolve) => {
        controller.signal.addEventListener('abort', () => resolve(), { once: true });
        void consumer.run({
          eachMessage: async ({ partition, message }) => {
            const decoded = await decode(message.value, registry);
            const offset = Number(message.offset);
            const key = message.key?.toString('utf8') ?? null;
            const time = new Date(Number(message.timestamp)).toISOString();
            printLine(json, { topic, partition, offset, timestamp: time, key, encoding: decoded.encoding, schemaId: decoded.schemaId, value: decoded.value },
              `${partition}/${offset} ${time} ${key ?? '-'} ${typeof decoded.value === 'string' ? decoded.value : JSON.stringify(decoded.value)}`);
            const start = starts.find((p) => p.partition === partition);
            if (!follow && start && offset >= start.end - 1) {
              pending.delete(partition);
              if (pending.size === 0) resolve();
            }
          },
        });
      });
      // Seek needs a running consumer: each partition from its start, not from a committed position.
      for (const { partition, from } of starts) consumer.seek({ topic, partition, offset: String(from) });
      await done;
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    }
  },
};

export const topicCommand: CommandModule = {
  command: 'topic <command>',
  describe: 'look into Kafka topics, decoded',
  builder: (y: Argv) => y.command(tail).demandCommand(1),
  handler: () => undefined,
};
