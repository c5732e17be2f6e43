/**
 * Kafka clients (kafkajs) built from the config, and a readiness check that makes a real
 * metadata call.
 */
import kafkajs, { Kafka, logLevel as KafkaLogLevel, type Admin, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import type { DiamondConfig, KafkaSecurity } from './config.ts';
import { ServiceUnavailableError } from './errors.ts';
import type { Logger } from './logger.ts';
import { readCaFile, readSecretFile } from './secret-file.ts';

// kafkajs is CommonJS and Node cannot see these enums as named ESM exports.
const { ConfigResourceTypes, ConfigSource } = kafkajs;

export interface KafkaClientOptions {
  readonly clientId?: string;
  readonly logger?: Logger;
  /** Connection attempts before giving up; kept low so a down broker is reported quickly. */
  readonly retries?: number;
}

export function createKafka(config: Pick<DiamondConfig, 'kafka'>, options: KafkaClientOptions = {}): Kafka {
  const kafkaConfig: KafkaConfig = {
    clientId: options.clientId ?? config.kafka.clientId,
    brokers: [...config.kafka.brokers],
    connectionTimeout: 3000,
    retry: { retries: options.retries ?? 5, initialRetryTime: 200 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => (entry: LogEntry) => forwardKafkaLog(options.logger, entry),
    ...kafkaSecurityOptions(config.kafka.security),
  };
  return new Kafka(kafkaConfig);
}

/** kafkajs' `ssl` and `sasl` for the configured protocol (the password is read from its file here). */
export function kafkaSecurityOptions(security: KafkaSecurity): { ssl?: ConnectionOptions | boolean; sasl?: SASLOptions } {
  const tls = security.protocol === 'SSL' || security.protocol === 'SASL_SSL';
  const ca = readCaFile('DIAMOND_KAFKA_CA_FILE', security.caFile);
  return {
    ...(tls ? { ssl: ca === undefined ? true : { ca: [ca] } } : {}),
    ...(security.sasl ? { sasl: { mechanism: security.sasl.mechanism, username: security.sasl.username, password: readSecretFile('DIAMOND_KAFKA_PASSWORD_FILE', security.sasl.passwordFile) } } : {}),
  };
}

function forwardKafkaLog(logger: Logger | undefined, { level, log, namespace }: LogEntry): void {
  if (!logger) return;
  const { message, ...extra } = log;
  const fields = { kafkajs: { namespace, ...extra } };
  if (level === KafkaLogLevel.ERROR) logger.error(fields, message);
  else if (level === KafkaLogLevel.WARN) logger.warn(fields, message);
  else logger.debug(fields, message);
}

/** Resolves when a broker answers a metadata request; throws ServiceUnavailableError otherwise. */
export async function checkKafka(config: Pick<DiamondConfig, 'kafka'>): Promise<{ brokers: number; controller: number | null }> {
  const admin: Admin = createKafka(config, { retries: 0, clientId: `${config.kafka.clientId}-health` }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return { brokers: cluster.brokers.length, controller: cluster.controller };
  } catch (cause) {
    throw new ServiceUnavailableError('Kafka', config.kafka.brokers.join(','), { cause });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions?: number;
  readonly config?: Record<string, string>;
  /** Names in `config` that an existing topic is changed to as well (alignTopicConfigs); the others apply at creation only. */
  readonly enforced?: readonly string[];
}

/** One setting alignTopicConfigs changed on an existing topic. */
export interface TopicConfigChange {
  readonly topic: string;
  readonly name: string;
  readonly from: string | null;
  readonly to: string;
}

/**
 * Creates the topics that do not exist yet (idempotent; existing ones are left as they are)
 * and resolves once every partition has a leader. kafkajs' own `waitForLeaders` gives up when
 * a fresh KRaft broker briefly answers UNKNOWN_TOPIC_OR_PARTITION for a topic it has just
 * created, so readiness is polled here instead.
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[], timeoutMs = 30_000): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((spec) => !existing.has(spec.topic));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: false,
      topics: missing.map((spec) => ({
        topic: spec.topic,
        numPartitions: spec.partitions ?? 3,
        configEntries: Object.entries(spec.config ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
  }
  await waitForLeaders(admin, specs.map((spec) => spec.topic), timeoutMs);
  return missing.map((spec) => spec.topic);
}

async function waitForLeaders(admin: Admin, topics: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics: [...topics] });
      if (metadata.length === topics.length && metadata.every((topic) => topic.partitions.length > 0 && topic.partitions.every((p) => p.leader >= 0))) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Sets each spec's `enforced` settings on its existing topic where the value differs, and
 * returns what changed. AlterConfigs (the non-incremental request kafkajs speaks) replaces a
 * topic's whole set of overrides, so the topic's other overrides are sent along unchanged.
 */
export async function alignTopicConfigs(admin: Admin, specs: readonly TopicSpec[]): Promise<TopicConfigChange[]> {
  const wanted = specs.filter((spec) => (spec.enforced ?? []).length > 0);
  if (wanted.length === 0) return [];
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: wanted.map((spec) => ({ type: ConfigResourceTypes.TOPIC, name: spec.topic })) });
  const changes: TopicConfigChange[] = [];
  for (const spec of wanted) {
    const entries = described.resources.find((r) => r.resourceName === spec.topic)?.configEntries ?? [];
    const overrides = new Map(entries.filter((e) => e.configSource === ConfigSource.TOPIC_CONFIG && !e.readOnly && !e.isSensitive).map((e) => [e.configName, e.configValue]));
    const current = new Map(entries.map((e) => [e.configName, e.configValue]));
    const mine: TopicConfigChange[] = [];
    for (const name of spec.enforced ?? []) {
      const to = spec.config?.[name];
      if (to === undefined || current.get(name) === to) continue;
      mine.push({ topic: spec.topic, name, from: current.get(name) ?? null, to });
      overrides.set(name, to);
    }
    if (mine.length === 0) continue;
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: spec.topic, configEntries: [...overrides].map(([name, value]) => ({ name, value })) }] });
    changes.push(...mine);
  }
  return changes;
}
