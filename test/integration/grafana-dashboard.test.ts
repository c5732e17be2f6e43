/**
 * The Grafana dashboard against the live processes: an upstream, a downstream (writers and
 * feedback API) and an orchestrator control API, started here on the real Kafka, registry,
 * Redis and Cassandra with their own topics, groups, keyspace and key prefixes. Records go
 * in through the ingest API and feedback about them through feedback.raw, so the ingest,
 * writer and end-to-end histograms have samples; then every metric name of every dashboard
 * query must be served by the live /metrics of the process it belongs to.
 */
import test from 'ava';
import { startDownstream } from '../../downstream/service.ts';
import { dashboardQueries, exposedNames, metricNamesOf, readDashboard } from '../../infra/observability/dashboard-metrics.ts';
import { startControlApi } from '../../infra/orchestrator/control-api.ts';
import { isolatedOrchestratorOptions } from '../support/isolated-options.ts';
import { OrchestratorMetrics } from '../../infra/orchestrator/orchestrator-metrics.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { metricValue } from '../../shared/metrics/registry.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { createRedis } from '../../shared/redis.ts';
import { startUpstream } from '../../upstream/service.ts';
import { downstreamFixture, feedback } from '../support/downstream.ts';
import { config, uniqueName } from '../support/env.ts';

/** Which process serves a dashboard name: by its prefix; the process metrics come from all three. */
function ownerOf(name: string): 'upstream' | 'downstream' | 'orchestrator' | 'every' {
  if (name.startsWith('diamond_ingest_')) return 'upstream';
  if (/^diamond_(job|alerts|control_api|driver_pool|runs?)_/.test(name)) return 'orchestrator';
  if (/^diamond_(feedback|history|writer)_/.test(name)) return 'downstream';
  return 'every';
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('every metric of the Grafana dashboard is served by the live /metrics of its process', async (t) => {
  const f = await downstreamFixture(t, 'grafana');
  const base = isolatedOrchestratorOptions('grafana');
  const options = { ...base, topics: { ...base.topics, output: f.topic, feedbackSubject: `${f.topic}-value` } };
  const rejectedRecords = `${options.topics.input}.rejected`;
  await ensureTopics(f.admin, [{ topic: options.topics.input, partitions: 2 }, { topic: options.topics.events, partitions: 1 }]);
  t.teardown(() => f.admin.deleteTopics({ topics: [options.topics.input, rejectedRecords, options.topics.events] }).catch(() => undefined));

  // Operators' tokens live under the orchestrator's prefix; upstream and downstream read them there.
  const upstream = await startUpstream(config, {
    logger: f.logger, port: 0, topics: { normalized: options.topics.input, rejected: rejectedRecords }, subject: options.topics.recordsSubject,
    redisKeyPrefix: `${f.keyPrefix}upstream:`, operatorKeyPrefix: options.keyPrefix,
  });
  t.teardown(() => upstream.close());
  const downstream = await startDownstream(config, {
    logger: f.logger, port: 0, keyspace: f.keyspace, redisKeyPrefix: f.keyPrefix, operatorKeyPrefix: options.keyPrefix,
    feedbackTopic: f.topic, rejectedFeedbackTopic: f.rejectedTopic, feedbackGroup: f.groupId,
    recordsTopic: options.topics.input, rejectedRecordsTopic: rejectedRecords, historyGroup: uniqueName('test-grafana-history'),
  });
  t.teardown(() => downstream.stop());
  const control = await startControlApi(config, { options, logger: f.logger, endpoints: platformEndpoints(config), metrics: new OrchestratorMetrics() }, { port: 0 });
  t.teardown(() => control.close());
  const operators = createRedis(config, { keyPrefix: options.keyPrefix });
  t.teardown(async () => {
    const keys = await operators.keys(`${options.keyPrefix}*`);
    if (keys.length > 0) await operators.del(...keys.map((key) => key.slice(options.keyPrefix.length)));
    operators.disconnect();
  });
  const viewer = await new TokenStore(operators).add('viewer', 'prometheus');

  // Records in through the ingest API, then feedback about them: the history writer notes their ingest time, the feedback writer measures ingest → row.
  const { apiKey } = await upstream.sources.add('shop');
  const records = Array.from({ length: 3 }, (_, i) => ({ record_id: `grafana-${i}`, customer_id: `c${i}`, event_time: Date.now(), type: 'purchase', amount: 10 }));
  const ingested = await fetch(`${upstream.url}/v1/records`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(records) });
  t.is(ingested.status, 202, await ingested.clone().text());
  await until('history rows written', async () => (await metricValue(downstream.metrics.registry, 'diamond_history_rows_written_total')) >= 3);
  await f.produce(records.map((record) => feedback({ customer_id: record.customer_id, usecase: 'grafana', variant: 'B', record_ids: [record.record_id] })));
  await until('feedback rows written', async () => (await metricValue(downstream.metrics.registry, 'diamond_feedback_rows_written_total', { table: 'feedback_by_variant' })) >= 3);

  const scrape = async (url: string): Promise<Set<string>> => {
    const answer = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${viewer}` } });
    const text = await answer.text();
    if (answer.status !== 200) throw new Error(`${url}/metrics answered ${answer.status}: ${text}`);
    return exposedNames(text);
  };
  const served = { upstream: await scrape(upstream.url), downstream: await scrape(downstream.url!), orchestrator: await scrape(control.url) };

  const names = [...new Set(dashboardQueries(readDashboard()).flatMap(metricNamesOf))].sort();
  t.true(names.length >= 20, `the dashboard names ${names.length} metrics`);
  const missing: string[] = [];
  for (const name of names) {
    const owner = ownerOf(name);
    const processes = owner === 'every' ? (['upstream', 'downstream', 'orchestrator'] as const) : [owner];
    for (const process of processes) if (!served[process].has(name)) missing.push(`${name} (on ${process})`);
  }
  t.deepEqual(missing, [], 'names of dashboard queries that no live /metrics serves');

  // The samples the traffic above made, not only the families' TYPE lines.
  const downstreamText = await (await fetch(`${downstream.url}/metrics`, { headers: { authorization: `Bearer ${viewer}` } })).text();
  t.regex(downstreamText, /diamond_feedback_end_to_end_seconds_count\{usecase="grafana",variant="B"\} 3\n/);
  t.regex(downstreamText, /diamond_writer_batch_duration_seconds_count\{writer="history"\} [1-9]/);
  const upstreamText = await (await fetch(`${upstream.url}/metrics`, { headers: { authorization: `Bearer ${viewer}` } })).text();
  t.regex(upstreamText, /diamond_ingest_records_total\{source="shop",outcome="accepted"\} 3\n/);
  // The pool and the runs, read from this orchestrator's (isolated, empty) Redis namespace when scraped.
  const orchestratorText = await (await fetch(`${control.url}/metrics`, { headers: { authorization: `Bearer ${viewer}` } })).text();
  t.regex(orchestratorText, new RegExp(`diamond_driver_pool_size ${config.orchestrator.poolSize}\n`));
  t.regex(orchestratorText, /diamond_driver_pool_spares\{state="ready"\} 0\n/);
  t.regex(orchestratorText, /diamond_runs_active\{state="running"\} 0\n/);
});
