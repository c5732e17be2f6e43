/**
 * Property-based fuzzing of the three HTTP APIs with Schemathesis, each from its own
 * /openapi.json, on the real servers (Kafka, registry, Redis, Cassandra): no 5xx, every
 * answer's status, content type and body as documented, and no /v1 route that works without
 * its credential. Each API on a free port with its own topics, key prefixes and keyspace.
 */
import test from 'ava';
import { CustomerKeys } from '../../downstream/customer-keys.ts';
import { startDownstream } from '../../downstream/service.ts';
import { startControlApi } from '../../infra/orchestrator/control-api.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { createRedis } from '../../shared/redis.ts';
import { startUpstream } from '../../upstream/service.ts';
import { config, testKafka, uniqueKeyspace, uniqueName } from '../support/env.ts';
import { fuzzApi, schemathesisBinary } from '../support/schemathesis.ts';

const logger = createLogger({ logLevel: 'silent' });
let binary = '';

test.before(async () => {
  binary = await schemathesisBinary(config);
});

const failures = (output: string): string => output.slice(output.indexOf('FAILURES') >= 0 ? output.indexOf('FAILURES') : -4000).slice(0, 6000);

test.serial('ingest API: fuzzed from its OpenAPI document, every answer conforms', async (t) => {
  const upstream = await startUpstream(config, {
    logger, port: 0, topics: { normalized: uniqueName('fuzz-normalized'), rejected: uniqueName('fuzz-rejected') },
    subject: uniqueName('fuzz-records-value'), redisKeyPrefix: `${uniqueName('test-fuzz-up')}:`,
  });
  t.teardown(() => upstream.close());
  const { apiKey } = await upstream.sources.add('shop');
  const run = await fuzzApi(binary, upstream.url, apiKey);
  t.is(run.code, 0, failures(run.output));
  t.regex(run.output, /Test cases:\s+\d+ generated/);
});

test.serial('feedback API: fuzzed from its OpenAPI document, every answer conforms', async (t) => {
  const keyPrefix = `${uniqueName('test-fuzz-down')}:`;
  const operatorKeyPrefix = `${uniqueName('test-fuzz-ops')}:`;
  const keyspace = uniqueKeyspace('fuzz');
  const downstream = await startDownstream(config, { logger, parts: ['api'], port: 0, keyspace, redisKeyPrefix: keyPrefix, operatorKeyPrefix });
  t.teardown(() => downstream.stop());
  const redis = createRedis(config, { keyPrefix });
  t.teardown(() => redis.disconnect());
  const key = await new CustomerKeys(redis).add('acme');
  // /v1/summary runs a Spark function on a control API, which this test does not start (503 here); orchestrator-summary.test.ts covers it.
  const run = await fuzzApi(binary, downstream.url!, key, { excludePaths: ['/v1/feedback/stream', '/v1/summary'] });
  t.is(run.code, 0, failures(run.output));
});

test.serial('control API: fuzzed from its OpenAPI document with an admin token, every answer conforms', async (t) => {
  const options = isolatedOrchestratorOptions('fuzz');
  const admin = testKafka().admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await ensureTopics(admin, [{ topic: options.topics.input, partitions: 1 }, { topic: options.topics.events, partitions: 1 }]);
  t.teardown(() => admin.deleteTopics({ topics: [options.topics.input, options.topics.events] }).catch(() => undefined));
  // The A/B route relays to downstream: one runs, so its answers are the relay's, not an outage's 503.
  const downstreamPrefix = `${uniqueName('test-fuzz-ab')}:`;
  const downstream = await startDownstream(config, { logger, parts: ['api'], port: 0, keyspace: uniqueKeyspace('fuzz_ab'), redisKeyPrefix: downstreamPrefix, operatorKeyPrefix: options.keyPrefix });
  t.teardown(() => downstream.stop());
  const relayed = { ...config, http: { ...config.http, feedbackUrl: downstream.url! } };
  // Rollout weights the fuzzer sets land in downstream's test namespace, never the real one.
  const api = await startControlApi(relayed, { options, logger, endpoints: platformEndpoints(relayed), rolloutKeyPrefix: downstreamPrefix }, { port: 0 });
  t.teardown(() => api.close());
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  t.teardown(async () => {
    const raw = createRedis(config);
    for (const prefix of [options.keyPrefix, downstreamPrefix]) {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length > 0) await raw.del(...keys);
    }
    raw.disconnect();
    redis.disconnect();
  });
  const token = await new TokenStore(redis).add('admin', 'fuzz');
  // /v1/sql starts a Spark function session (heavy for this suite); orchestrator-runs.test.ts covers it.
  const run = await fuzzApi(binary, api.url, token, { excludePaths: ['/v1/events', '/v1/sql'] });
  t.is(run.code, 0, failures(run.output));
});
