/**
 * The memory baseline of a Node service: `node --import tsx test/bench/bare-node.ts kafka,redis,cassandra`
 * loads the same runtime and client libraries a Diamond service does, connects them (a
 * kafkajs admin and producer, an ioredis client, a cassandra-driver client), prints one line
 * and idles until SIGTERM. Nothing of Diamond's own code runs.
 */
import { loadConfig } from '../../shared/config.ts';
import { createCassandra } from '../../shared/cassandra.ts';
import { createKafka } from '../../shared/kafka.ts';
import { createRedis } from '../../shared/redis.ts';

const config = loadConfig(process.env);
const wanted = new Set((process.argv[2] ?? 'kafka,redis').split(','));
const stops: (() => Promise<unknown>)[] = [];
if (wanted.has('kafka')) {
  const kafka = createKafka(config, { clientId: 'bench-bare-node' });
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true });
  await Promise.all([admin.connect(), producer.connect()]);
  await admin.listTopics();
  stops.push(() => admin.disconnect(), () => producer.disconnect());
}
if (wanted.has('redis')) {
  const redis = createRedis(config);
  await redis.connect();
  await redis.ping();
  stops.push(async () => redis.disconnect());
}
if (wanted.has('cassandra')) {
  const client = createCassandra(config);
  await client.connect();
  await client.execute('SELECT release_version FROM system.local');
  stops.push(() => client.shutdown());
}
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
const keepAlive = setInterval(() => undefined, 60_000);
process.once('SIGTERM', () => {
  clearInterval(keepAlive);
  void Promise.all(stops.map((stop) => stop().catch(() => undefined))).then(() => process.exit(0));
});
