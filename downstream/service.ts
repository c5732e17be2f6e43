/**
 * Everything downstream runs, started together: the feedback writer, the history writer and
 * (when asked) the customer feedback API. Used by `diamond serve downstream` and by
 * `downstream/main.ts` (the process the kill -9 tests start).
 *
 *   const downstream = await startDownstream(loadConfig(process.env), { logger });
 *   …
 *   await downstream.stop();
 */
import type { DiamondConfig } from '../shared/config.ts';
import { createCassandra } from '../shared/cassandra.ts';
import type { DependencyName } from '../shared/dependency-wait.ts';
import { ServiceUnavailableError } from '../shared/errors.ts';
import { createKafka, ensureTopics } from '../shared/kafka.ts';
import type { Logger } from '../shared/logger.ts';
import { listen } from '../shared/http/server.ts';
import { OPERATOR_KEY_PREFIX, TokenStore } from '../shared/operator-tokens.ts';
import { createRedis } from '../shared/redis.ts';
import { createRegistry } from '../shared/registry.ts';
import { Topics } from '../shared/topics.ts';
import { CustomerKeys } from './customer-keys.ts';
import { CustomerSummaries } from './customer-summary.ts';
import { createFeedbackApi } from './feedback-api.ts';
import { FeedbackWriter, FEEDBACK_WRITER_GROUP } from './feedback-writer.ts';
import { HistoryWriter, HISTORY_WRITER_GROUP } from './history-writer.ts';
import { LiveFeed } from './live-feed.ts';
import { DownstreamMetrics } from './downstream-metrics.ts';
import { keyspaceReplication, migrateKeyspace } from './migrations.ts';
import { RolloutStore } from './rollout-store.ts';

export type DownstreamPart = 'feedback-writer' | 'history-writer' | 'api';
export const DOWNSTREAM_PARTS: readonly DownstreamPart[] = ['feedback-writer', 'history-writer', 'api'];

/** What downstream cannot start without; `diamond serve downstream` waits for them (the registry is read per batch, and retried there). */
export const DOWNSTREAM_DEPENDENCIES: readonly DependencyName[] = ['cassandra', 'kafka', 'redis'];

export interface DownstreamOptions {
  readonly logger: Logger;
  readonly parts?: readonly DownstreamPart[];
  /** Defaults: the real names (config.downstream.keyspace, feedback.raw, …). Tests inject unique ones. */
  readonly keyspace?: string;
  readonly feedbackTopic?: string;
  readonly rejectedFeedbackTopic?: string;
  readonly feedbackGroup?: string;
  readonly recordsTopic?: string;
  readonly rejectedRecordsTopic?: string;
  readonly historyGroup?: string;
  readonly redisKeyPrefix?: string;
  /** Where operators' tokens live (default the orchestrator's prefix; tests pass their own). */
  readonly operatorKeyPrefix?: string;
  /** Port of the feedback API (0 = any free port). */
  readonly port?: number;
  /** A writer's consumer stopped for good. Default: log, stop everything, exit 1 so a supervisor restarts the process. */
  readonly onFatal?: (error: Error) => void;
}

export interface RunningDownstream {
  /** Base URL of the feedback API, when it runs. */
  readonly url: string | null;
  readonly metrics: DownstreamMetrics;
  stop(): Promise<void>;
}

export async function startDownstream(config: DiamondConfig, options: DownstreamOptions): Promise<RunningDownstream> {
  const { logger } = options;
  const parts = new Set(options.parts ?? DOWNSTREAM_PARTS);
  const keyspace = options.keyspace ?? config.downstream.keyspace;
  const feedbackTopic = options.feedbackTopic ?? Topics.rawFeedback;
  const recordsTopic = options.recordsTopic ?? Topics.normalizedRecords;
  const metrics = new DownstreamMetrics();
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-downstream`, logger: logger.child({ component: 'kafka' }) });
  const registry = createRegistry(config);
  const cassandra = createCassandra(config);
  const redisOptions = options.redisKeyPrefix ? { keyPrefix: options.redisKeyPrefix } : {};
  const redis = createRedis(config, redisOptions);
  const subscriber = createRedis(config, redisOptions);
  const operatorRedis = createRedis(config, { keyPrefix: options.operatorKeyPrefix ?? OPERATOR_KEY_PREFIX });
  const stops: (() => Promise<void>)[] = [];
  for (const client of [redis, subscriber, operatorRedis]) client.on('error', (error: Error) => logger.warn({ error: error.message }, 'redis connection error'));
  let stopping: Promise<void> | undefined;
  const onFatal = options.onFatal ?? ((error: Error): void => {
    logger.fatal({ error: error.message }, 'a writer stopped consuming; exiting so that it is restarted');
    void (stopping ?? stop()).finally(() => process.exit(1));
  });

  const live = new LiveFeed(redis, subscriber, logger);
  let url: string | null = null;
  try {
    await startParts();
  } catch (error) {
    // A failed start leaves nothing open, so the caller may wait for the servers and start again.
    await stopAll();
    throw error;
  }

  async function startParts(): Promise<void> {
    await cassandra.connect().catch((cause: unknown) => {
      throw new ServiceUnavailableError('Cassandra', config.cassandra.contactPoints.join(','), { cause });
    });
    await migrateKeyspace(cassandra, keyspace, { logger, replication: keyspaceReplication(config.cassandra) });
    const admin = kafka.admin();
    await admin.connect().catch((cause: unknown) => {
      throw new ServiceUnavailableError('Kafka', config.kafka.brokers.join(','), { cause });
    });
    try {
      await ensureTopics(admin, [
        { topic: feedbackTopic }, { topic: options.rejectedFeedbackTopic ?? Topics.rejectedFeedback },
        ...(parts.has('history-writer') ? [{ topic: recordsTopic }, { topic: options.rejectedRecordsTopic ?? Topics.rejectedRecords }] : []),
      ]);
    } finally {
      await admin.disconnect();
    }

    if (parts.has('api')) {
      await live.start();
      const app = await createFeedbackApi({
        cassandra, cassandraAddress: config.cassandra.contactPoints.join(','), keyspace, customers: new CustomerKeys(redis), operators: new TokenStore(operatorRedis), rollouts: new RolloutStore(redis), redis, live, metrics, logger,
        streamsPerCustomer: config.http.streamsPerClient, summaries: new CustomerSummaries(config.summary, logger.child({ component: 'summary' })),
      });
      // A busy port throws here; the caller's catch closes every client opened so far.
      url = await listen(app, { port: options.port ?? config.http.feedbackPort, host: config.http.host, api: 'feedback API', change: { flag: '--port', env: 'DIAMOND_FEEDBACK_PORT' } });
      stops.push(async () => {
        app.server.closeAllConnections(); // open SSE streams end with the process
        await app.close();
      });
      logger.info({ url }, 'feedback API listening');
    }
    if (parts.has('feedback-writer')) {
      const writer = new FeedbackWriter({
        kafka, registry, cassandra, rollouts: new RolloutStore(redis), logger, keyspace, metrics,
        topic: feedbackTopic, rejectedTopic: options.rejectedFeedbackTopic ?? Topics.rejectedFeedback, groupId: options.feedbackGroup ?? FEEDBACK_WRITER_GROUP,
        onDelivered: (rows) => live.publish(rows), onFatal,
      });
      await writer.start();
      stops.unshift(() => writer.stop());
    }
    if (parts.has('history-writer')) {
      const writer = new HistoryWriter({
        kafka, registry, cassandra, logger, keyspace, metrics,
        topic: recordsTopic, rejectedTopic: options.rejectedRecordsTopic ?? Topics.rejectedRecords, groupId: options.historyGroup ?? HISTORY_WRITER_GROUP, onFatal,
      });
      await writer.start();
      stops.unshift(() => writer.stop());
    }
  }

  async function stopAll(): Promise<void> {
    // Writers first (they finish their batch), then the API, then the clients.
    for (const stopPart of stops) await stopPart().catch((error: unknown) => logger.warn({ error: String(error) }, 'stopping a downstream part failed'));
    await live.stop();
    redis.disconnect();
    subscriber.disconnect();
    operatorRedis.disconnect();
    await cassandra.shutdown();
  }
  function stop(): Promise<void> {
    return (stopping ??= stopAll());
  }
  return { url, metrics, stop };
}
