/**
 * The secured profile end to end: the local services started secured (DIAMOND_SECURITY=1, in
 * ava.secure.config.js's own home and ports), each refusing a client without credentials or
 * without TLS, then the baseline diamond (test/e2e/baseline.test.ts's flow) through them:
 * ingest, the Spark jobs (SASL_SSL, registry basic auth over https), the writer (Cassandra
 * TLS + PasswordAuthenticator), exactly the expected rows. The services are stopped after.
 */
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import test from 'ava';
import cassandra from 'cassandra-driver';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import { loadConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { deployExamples, e2eDataset, startDiamond } from '../support/e2e.ts';

const config = loadConfig(process.env);
const SECURED = ['redis', 'kafka', 'registry', 'cassandra'] as const;

test.before(async (t) => {
  t.true(config.security.localProfile && config.kafka.brokers[0] === '127.0.0.1:19392', 'run through npm run test:secure (its own home and ports)');
  await servicesUp(config, createLogger(config, { fd: 2 }), { only: [...SECURED, 'spark'], onStep: (service, message) => t.log(`${service}: ${message}`) });
});

test.after.always(async () => {
  await servicesDown(config, { only: [...SECURED] });
});

const [kafkaHost, kafkaPort] = (config.kafka.brokers[0] ?? '').split(':');

test('Kafka refuses a plaintext client and a wrong SCRAM password', async (t) => {
  const plaintext = new Kafka({ clientId: 'plain', brokers: [...config.kafka.brokers], connectionTimeout: 2000, retry: { retries: 0 }, logLevel: logLevel.NOTHING });
  const admin = plaintext.admin();
  await t.throwsAsync(async () => { await admin.connect(); await admin.listTopics(); });
  await admin.disconnect().catch(() => undefined);
  const secret = 'not-the-password';
  const wrong = new Kafka({ clientId: 'wrong', brokers: [...config.kafka.brokers], ssl: { ca: [readFileSync(config.kafka.security.caFile ?? '')] }, sasl: { mechanism: 'scram-sha-512', username: 'diamond', password: secret }, retry: { retries: 0 }, logLevel: logLevel.NOTHING }).admin();
  const error = await t.throwsAsync(wrong.connect());
  t.regex(String(error?.message), /SASL|authentication/i);
  t.false(JSON.stringify({ message: error?.message, stack: error?.stack }).includes(secret));
  await wrong.disconnect().catch(() => undefined);
  // And a TLS client that does not trust the broker's CA is refused at the handshake.
  await t.throwsAsync(new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: kafkaHost, port: Number(kafkaPort), rejectUnauthorized: true }, () => resolve(socket.end()));
    socket.once('error', reject);
  }));
});

test('Cassandra refuses a client without TLS and one without credentials', async (t) => {
  const [host] = config.cassandra.contactPoints;
  const plain = new cassandra.Client({ contactPoints: [host ?? ''], localDataCenter: config.cassandra.localDataCenter, socketOptions: { connectTimeout: 3000, readTimeout: 3000 } });
  // cassandra-driver's errors are not Error instances to AVA, hence `any`.
  await t.throwsAsync(plain.connect(), { any: true });
  await plain.shutdown().catch(() => undefined);
  const anonymous = new cassandra.Client({ contactPoints: [host ?? ''], localDataCenter: config.cassandra.localDataCenter, sslOptions: { ca: [readFileSync(config.cassandra.tls?.caFile ?? '')] } });
  const error = await t.throwsAsync(anonymous.connect(), { any: true });
  t.regex(String((error as Error & { innerErrors?: unknown }).message) + JSON.stringify(Object.values((error as { innerErrors?: Record<string, Error> }).innerErrors ?? {}).map((e) => e.message)), /authenticat/i);
  await anonymous.shutdown().catch(() => undefined);
  const retired = new cassandra.Client({ contactPoints: [host ?? ''], localDataCenter: config.cassandra.localDataCenter, sslOptions: { ca: [readFileSync(config.cassandra.tls?.caFile ?? '')] }, authProvider: new cassandra.auth.PlainTextAuthProvider('cassandra', 'cassandra') });
  await t.throwsAsync(retired.connect(), { any: true }, 'the well-known default superuser login no longer works');
  await retired.shutdown().catch(() => undefined);
});

test('Redis refuses the default user and a wrong ACL password', async (t) => {
  for (const options of [{}, { username: 'diamond', password: 'not-the-password' }]) {
    const client = new Redis(config.redis.url, { ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    await t.throwsAsync(async () => { await client.connect(); await client.ping(); });
    client.disconnect();
  }
});

test('the registry refuses plain http and requests without basic auth', async (t) => {
  const https = new URL(config.registry.url);
  await t.throwsAsync(fetch(`http://${https.host}${https.pathname}/subjects`, { signal: AbortSignal.timeout(3000) }), undefined, 'no plain HTTP on its port');
  // Node's fetch cannot take the CA; node:https can.
  const status = await new Promise<number>((resolve, reject) => {
    import('node:https').then(({ get }) => {
      get(`${config.registry.url}/subjects`, { ca: readFileSync(config.registry.caFile ?? '') }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).once('error', reject);
    }, reject);
  });
  t.is(status, 401);
});

test('the baseline diamond through the secured services: exactly the expected rows', async (t) => {
  const d = await startDiamond(t, 'secure-baseline');
  const jobs = await deployExamples(d);
  const dataset = e2eDataset();
  const stream = d.stream(dataset, 150);
  await stream.done;
  const { expected, delivered } = await d.settle(t, stream, { jobs: Object.values(jobs) });
  t.true(expected.delivered.length > 0);
  t.log(`${dataset.accepted.size} records → ${expected.all.length} feedback rows, ${delivered.length} delivered through SASL_SSL, https + basic auth, Cassandra TLS + auth`);
});
