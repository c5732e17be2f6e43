/**
 * Kafka clients (kafkajs) built from the config, and a readiness check that makes a real
 * metadata call.
 */
import { Kafka, logLevel as KafkaLogLevel, type Admin, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { DiamondConfig } from './config.ts';
import { ServiceUnavailableError } from './errors.ts';
import type { Logger } from './logger.ts';

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
  };
  return new Kafka(kafkaConfig);
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
