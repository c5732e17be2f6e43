/**
 * Wires the upstream services from the config: registers the CustomerRecord contract,
 * connects the idempotent producer, opens the source store and starts the HTTP ingest API.
 *
 *   const upstream = await startUpstream(config, { logger });
 *   logger.info({ url: upstream.url }, 'ingest API listening');
 *   await upstream.close();
 *
 * Kafka being down at start is not fatal: the API answers 503 until the producer connects.
 * A registry that refuses the contract as incompatible is fatal (SchemaIncompatibleError).
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { DiamondConfig } from '../shared/config.ts';
import type { DependencyName } from '../shared/dependency-wait.ts';
import { SchemaIncompatibleError, ServiceUnavailableError } from '../shared/errors.ts';
import { alignTopicConfigs, createKafka, ensureTopics, type TopicSpec } from '../shared/kafka.ts';
import type { Logger } from '../shared/logger.ts';
import { OPERATOR_KEY_PREFIX, TokenStore } from '../shared/operator-tokens.ts';
import { createRedis, redisUnavailable } from '../shared/redis.ts';
import { createRegistry, registerContract } from '../shared/registry.ts';
import { Subjects } from '../shared/schemas.ts';
import { IngestServer } from './ingest-server.ts';
import { createRecordEncoder, DEFAULT_TOPICS, RecordPipeline, type PipelineTopics, type RecordEncoder } from './pipeline.ts';
import { SourceStore } from './sources.ts';

/**
 * What the ingest API cannot start without; `diamond serve upstream` waits for them. Kafka is
 * not among them on purpose: without it the API serves 503 + Retry-After while the producer
 * reconnects in the background, which tells clients more than a refused connection.
 */
export const UPSTREAM_DEPENDENCIES: readonly DependencyName[] = ['registry', 'redis'];

/** Redis key prefix of the source store; `diamond source add` and the services use the same one. */
export const UPSTREAM_KEY_PREFIX = 'diamond:upstream:';
const RECONNECT_MS = 2_000;

export interface UpstreamOptions {
  readonly logger: Logger;
  /** 0 = a free port (tests). Default: config.http.ingestPort. */
  readonly port?: number;
  readonly host?: string;
  readonly topics?: PipelineTopics;
  /** Registry subject of the contract (tests use a unique one). */
  readonly subject?: string;
  readonly redisKeyPrefix?: string;
  /** Where operators' tokens live, for /metrics (default the orchestrator's prefix; tests pass their own). */
  readonly operatorKeyPrefix?: string;
  readonly produceTimeoutMs?: number;
  readonly maxInFlightMessages?: number;
}

export interface UpstreamService extends UpstreamCore {
  readonly url: string;
  readonly server: IngestServer;
}

/** Registers the contract and returns its id; an incompatible change is refused with a clear error. */
export async function registerCustomerRecord(registry: SchemaRegistry, subject: string = Subjects.CustomerRecord, registryUrl = ''): Promise<number> {
  try {
    return await registerContract(registry, 'CustomerRecord', subject);
  } catch (error) {
    if ((error as { status?: unknown }).status === 409) throw new SchemaIncompatibleError(subject, { cause: error });
    throw new ServiceUnavailableError('schema registry', registryUrl, { cause: error });
  }
}

/**
 * Topic settings: rejected envelopes carry the raw input, which may be as large as a whole
 * request. (Kafka's limit applies to a producer's whole batch, not to one record, so the
 * per-record limit is enforced by the pipeline, not by the topic.) records.normalized keeps
 * DIAMOND_RECORDS_RETENTION, also on a topic that exists already: how far back replays reach.
 */
export function upstreamTopicSpecs(config: Pick<DiamondConfig, 'upstream' | 'history'>, topics: PipelineTopics = DEFAULT_TOPICS): TopicSpec[] {
  const maxMessageBytes = String(Math.max(2 * config.upstream.maxBodyBytes + 1024 * 1024, 8 * 1024 * 1024));
  return [
    { topic: topics.normalized, config: { 'max.message.bytes': maxMessageBytes, 'retention.ms': String(config.history.recordsRetentionMs) }, enforced: ['retention.ms'] },
    { topic: topics.rejected, config: { 'max.message.bytes': maxMessageBytes } },
  ];
}

/**
 * The producer every upstream path uses: idempotent, acks from all in-sync replicas (set per
 * send), retries without limit (limiting them would void the idempotence guarantee; callers
 * that must answer in time race the send against a timeout instead, see RecordPipeline).
 */
export function createUpstreamProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
}

/**
 * Creates the topics and aligns their enforced settings (records retention), logging each
 * change. Creating topics right after another client did can briefly fail ("does not host
 * this topic-partition"); retry a few times.
 */
export async function ensureUpstreamTopics(kafka: Kafka, specs: readonly TopicSpec[], logger: Pick<Logger, 'info'>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await ensureTopics(admin, specs);
        for (const change of await alignTopicConfigs(admin, specs)) logger.info(change, `changed ${change.name} of ${change.topic} from ${change.from ?? 'the default'} to ${change.to}`);
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
      }
    }
  } finally {
    await admin.disconnect();
  }
}

export interface ProducerLink {
  readonly kafka: Kafka;
  readonly producer: Producer;
  readonly encoder: RecordEncoder;
  connected(): boolean;
  close(): Promise<void>;
}

/** Registers the contract, connects the producer (retrying in the background while Kafka is down) and creates the topics. */
export async function connectProducer(config: DiamondConfig, options: Pick<UpstreamOptions, 'logger' | 'subject' | 'topics'>): Promise<ProducerLink> {
  const registry = createRegistry(config);
  const schemaId = await registerCustomerRecord(registry, options.subject, config.registry.url);
  const encoder = await createRecordEncoder(registry, schemaId);
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-upstream`, logger: options.logger.child({ component: 'kafka' }) });
  const producer = createUpstreamProducer(kafka);
  let connected = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    try {
      await producer.connect();
      await ensureUpstreamTopics(kafka, upstreamTopicSpecs(config, options.topics), options.logger);
      connected = true;
      options.logger.info({ brokers: config.kafka.brokers, schemaId }, 'producer connected');
    } catch (error) {
      if (closed) return;
      options.logger.warn({ err: error, retryInMs: RECONNECT_MS }, 'Kafka not reachable; answering 503 until it is');
      timer = setTimeout(() => void connect(), RECONNECT_MS);
    }
  };
  await connect();
  return {
    kafka,
    producer,
    encoder,
    connected: () => connected,
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await producer.disconnect();
    },
  };
}

export interface UpstreamCore {
  readonly kafka: Kafka;
  readonly pipeline: RecordPipeline;
  readonly sources: SourceStore;
  readonly kafkaReady: () => boolean;
  close(): Promise<void>;
}

/** The producer, the pipeline and the source store: what every ingest path (HTTP, files, raw topics) needs. */
export async function openUpstream(config: DiamondConfig, options: UpstreamOptions): Promise<UpstreamCore> {
  const logger = options.logger;
  const link = await connectProducer(config, options);
  const redis = createRedis(config, { keyPrefix: options.redisKeyPrefix ?? UPSTREAM_KEY_PREFIX });
  redis.on('error', (error: unknown) => logger.warn({ err: error }, 'Redis error'));
  try {
    await redis.connect();
  } catch (cause) {
    await link.close();
    throw redisUnavailable(config, cause);
  }
  const pipeline = new RecordPipeline({
    producer: link.producer,
    encoder: link.encoder,
    topics: options.topics,
    logger: logger.child({ component: 'pipeline' }),
    produceTimeoutMs: options.produceTimeoutMs,
    maxInFlightMessages: options.maxInFlightMessages,
    maxRecordBytes: config.upstream.maxRecordBytes,
  });
  return {
    kafka: link.kafka,
    pipeline,
    sources: new SourceStore(redis),
    kafkaReady: () => link.connected() && pipeline.writing,
    close: async () => {
      await link.close();
      redis.disconnect();
    },
  };
}

export async function startUpstream(config: DiamondConfig, options: UpstreamOptions): Promise<UpstreamService> {
  const core = await openUpstream(config, options);
  // Its own client: the source store's carries upstream's key prefix, the tokens live under the orchestrator's.
  const operatorRedis = createRedis(config, { keyPrefix: options.operatorKeyPrefix ?? OPERATOR_KEY_PREFIX });
  operatorRedis.on('error', (error: unknown) => options.logger.warn({ err: error }, 'Redis error'));
  const server = new IngestServer({
    pipeline: core.pipeline,
    sources: core.sources,
    operators: new TokenStore(operatorRedis),
    maxBodyBytes: config.upstream.maxBodyBytes,
    logger: options.logger.child({ component: 'ingest-api' }),
    kafkaReady: core.kafkaReady,
  });
  let url: string;
  try {
    url = await server.listen(options.port ?? config.http.ingestPort, options.host ?? config.http.host);
  } catch (error) {
    operatorRedis.disconnect();
    await core.close();
    throw error;
  }
  return {
    ...core,
    url,
    server,
    close: async () => {
      await server.close();
      operatorRedis.disconnect();
      await core.close();
    },
  };
}
