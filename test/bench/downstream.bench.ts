/**
 * `npm run bench -- downstream`: the same Feedback rows written to Cassandra by
 * (a) bare cassandra-driver concurrent prepared inserts (`concurrent.executeConcurrent`) and
 * (b) the FeedbackWriter consuming them from Kafka (decode, A/B filter, upserts, commits),
 * in one run, each into its own freshly migrated keyspace. Prints rows/s, the ratio b/a
 * (target ≥ 0.8, DESIGN §8) and the writer's peak memory. Sizes: DIAMOND_BENCH_ROWS (20000).
 */
import cassandra from 'cassandra-driver';
import { randomUUID } from 'node:crypto';
import { createCassandra } from '../../shared/cassandra.ts';
import { loadConfig } from '../../shared/config.ts';
import { createKafka, ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { bucketOf } from '../../downstream/assign-variant.ts';
import { utcDay } from '../../downstream/cassandra-rows.ts';
import { FeedbackWriter } from '../../downstream/feedback-writer.ts';
import { metricValue } from '../../shared/metrics/registry.ts';
import { migrateKeyspace, VARIANT_SHARDS } from '../../downstream/migrations.ts';
import { RolloutStore } from '../../downstream/rollout-store.ts';
import type { BenchResult } from './results.ts';

const out = (line: string): void => {
  process.stdout.write(line + '\n');
};

export async function run(): Promise<BenchResult> {
  const benchStarted = performance.now();
  const config = loadConfig(process.env);
  const count = Number(process.env['DIAMOND_BENCH_ROWS'] ?? 20_000);
  const id = randomUUID().replaceAll('-', '').slice(0, 8);
  const [bareKs, writerKs] = [`bench_bare_${id}`, `bench_writer_${id}`];
  const topic = `bench-feedback-${id}`;
  const logger = createLogger({ logLevel: 'error' }, { fd: 2 });
  const kafka = createKafka(config, { clientId: `bench-${id}`, logger });
  const admin = kafka.admin();
  const producer = kafka.producer();
  const registry = createRegistry(config);
  const client = createCassandra(config);
  const redis = createRedis(config, { keyPrefix: `bench-${id}:` });
  await Promise.all([admin.connect(), producer.connect(), client.connect()]);

  try {
    await migrateKeyspace(client, bareKs);
    await migrateKeyspace(client, writerKs);
    await ensureTopics(admin, [{ topic, partitions: 3 }, { topic: `${topic}.rejected`, partitions: 1 }]);
    const schemaId = await registerContract(registry, 'Feedback', `${topic}-value`);

    const now = Date.now();
    const rows: Feedback[] = Array.from({ length: count }, (_, i) => ({
      feedback_id: `bench:${id}:${i}`, customer_id: `c${i % 5000}`, usecase: 'bench', variant: 'A', version: 'v1', kind: 'spending_spike',
      severity: 'warning', score: i / count, message: 'spent more than usual on groceries this week', details: { category: 'groceries', n: String(i) },
      record_ids: [`r-${i}`], event_time: now - (i % 86_400_000), produced_at: now,
    }));
    out(`downstream bench: ${count} feedback rows → 2 Cassandra rows each (feedback_by_variant + feedback_by_customer)`);

    // Kafka is filled before either timer starts: (b) measures consuming + writing, not producing.
    for (let i = 0; i < rows.length; i += 2000) {
      const messages = await Promise.all(rows.slice(i, i + 2000).map(async (row) => ({ key: row.customer_id, value: await registry.encode(schemaId, row) })));
      await producer.send({ topic, acks: -1, messages });
    }

    // (a) bare driver: the same rows, the same two tables, concurrent prepared inserts, as many
    // in flight as the writer allows at most (3 partitions × 128).
    const columns = 'feedback_id, customer_id, usecase, variant, version, kind, severity, score, message, details, record_ids, event_time, produced_at, written_at';
    const marks = columns.split(',').map(() => '?').join(', ');
    const values = (r: Feedback): unknown[] => [r.feedback_id, r.customer_id, r.usecase, r.variant, r.version, r.kind, r.severity, r.score, r.message, r.details, r.record_ids, new Date(r.event_time), new Date(r.produced_at), new Date()];
    const statements = rows.flatMap((r) => [
      { query: `INSERT INTO ${bareKs}.feedback_by_variant (day, shard, ${columns}) VALUES (?, ?, ${marks})`, params: [utcDay(r.event_time), bucketOf(r.customer_id, r.usecase) % VARIANT_SHARDS, ...values(r)] },
      { query: `INSERT INTO ${bareKs}.feedback_by_customer (day, ${columns}) VALUES (?, ${marks})`, params: [utcDay(r.event_time), ...values(r)] },
    ]);
    const bareStart = performance.now();
    await cassandra.concurrent.executeConcurrent(client, statements, { concurrencyLevel: 384 });
    const bareSeconds = (performance.now() - bareStart) / 1000;
    const bareRate = statements.length / bareSeconds;
    out(`(a) bare cassandra-driver:  ${statements.length} rows in ${bareSeconds.toFixed(2)} s = ${Math.round(bareRate)} rows/s`);

    // (b) the feedback writer, from Kafka, timed from start() (connect and group join included).
    const writer = new FeedbackWriter({
      kafka, registry, cassandra: client, rollouts: new RolloutStore(redis), logger, keyspace: writerKs,
      topic, rejectedTopic: `${topic}.rejected`, groupId: `bench-writer-${id}`,
    });
    const baseRss = process.memoryUsage().rss;
    let peakRss = baseRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 25);
    const startCall = performance.now();
    await writer.start();
    await writer.joined;
    const joinSeconds = (performance.now() - startCall) / 1000;
    const writerStart = startCall;
    while ((await metricValue(writer.metrics.registry, 'diamond_feedback_rows_written_total', { table: 'feedback_by_variant' })) < count) await new Promise((r) => setTimeout(r, 10));
    const writerSeconds = (performance.now() - writerStart) / 1000;
    clearInterval(sampler);
    await writer.stop();
    const writerRate = (count * 2) / writerSeconds;
    out(`(b) FeedbackWriter (Kafka): ${count * 2} rows in ${writerSeconds.toFixed(2)} s = ${Math.round(writerRate)} rows/s (of which ${joinSeconds.toFixed(1)} s connecting and joining the group)`);
    out(`ratio b/a = ${(writerRate / bareRate).toFixed(2)} (target ≥ 0.8)`);
    out(`writer peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (bench process; ${((peakRss - baseRss) / 2 ** 20).toFixed(0)} MiB above its start)`);
    const check = await client.execute(`SELECT count(*) AS n FROM ${writerKs}.feedback_by_variant`);
    out(`rows in the writer's feedback_by_variant: ${String(check.first()?.get('n'))}`);
    return {
      bench: 'downstream',
      seconds: (performance.now() - benchStarted) / 1000,
      rows: [
        { component: 'downstream', metric: 'throughput, feedback writer (Kafka → 2 tables)', unit: 'rows/s', value: writerRate, baseline: bareRate, baselineIs: 'bare cassandra-driver executeConcurrent', better: 'higher', target: '≥ 0.8', note: `incl. ${joinSeconds.toFixed(1)} s group join` },
        { component: 'downstream', metric: 'peak memory, writer (bench process)', unit: 'MiB', value: peakRss / 2 ** 20, baseline: baseRss / 2 ** 20, baselineIs: 'same process before the writer started', better: 'lower', note: `${count} rows held by the bench` },
      ],
      // Each feedback is 2 Cassandra rows: the bare driver's feedback/s, for the end-to-end bench.
      refs: { 'bare cassandra-driver (feedback/s)': bareRate / 2 },
      details: { count, bareSeconds, writerSeconds, joinSeconds },
    };
  } finally {
    await client.execute(`DROP KEYSPACE IF EXISTS ${bareKs}`).catch(() => undefined);
    await client.execute(`DROP KEYSPACE IF EXISTS ${writerKs}`).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic, `${topic}.rejected`] }).catch(() => undefined);
    await admin.deleteGroups([`bench-writer-${id}`]).catch(() => undefined);
    await Promise.all([admin.disconnect(), producer.disconnect(), client.shutdown()]);
    redis.disconnect();
  }
}
