import test from 'ava';
import { ConfigError } from './errors.ts';
import { loadConfig, parseHostPort } from './config.ts';

test('defaults point at the local services on non-standard ports', (t) => {
  const config = loadConfig({});
  t.deepEqual(config.kafka.brokers, ['127.0.0.1:19092']);
  t.is(config.registry.url, 'http://127.0.0.1:18081/apis/ccompat/v7');
  t.deepEqual(config.cassandra.contactPoints, ['127.0.0.1:19042']);
  t.is(config.redis.url, 'redis://127.0.0.1:16379');
  t.is(config.spark.master, 'local[2]');
  t.true(Object.isFrozen(config) && Object.isFrozen(config.kafka) && Object.isFrozen(config.kafka.brokers));
});

test('every address can point at an existing cluster', (t) => {
  const config = loadConfig({
    DIAMOND_KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092',
    DIAMOND_REGISTRY_URL: 'https://registry.example:8081/',
    DIAMOND_CASSANDRA_CONTACT_POINTS: '[::1]:9042',
    DIAMOND_REDIS_URL: 'rediss://redis.example:6380',
    DIAMOND_SPARK_MASTER: 'spark://master:7077',
  });
  t.deepEqual(config.kafka.brokers, ['kafka-1:9092', 'kafka-2:9092']);
  t.is(config.registry.url, 'https://registry.example:8081', 'trailing slash removed');
  t.deepEqual(config.cassandra.contactPoints, ['[::1]:9042']);
  t.is(config.spark.master, 'spark://master:7077');
});

test('a bad value names the variable and the fix', (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ DIAMOND_KAFKA_BROKERS: 'localhost' }, /DIAMOND_KAFKA_BROKERS.*not host:port/],
    [{ DIAMOND_KAFKA_BROKERS: 'h:99999' }, /DIAMOND_KAFKA_BROKERS has port "99999"/],
    [{ DIAMOND_REGISTRY_URL: 'registry:8081' }, /DIAMOND_REGISTRY_URL uses registry:/],
    [{ DIAMOND_REDIS_URL: 'not a url' }, /DIAMOND_REDIS_URL is "not a url"/],
    [{ DIAMOND_LOG_LEVEL: 'loud' }, /DIAMOND_LOG_LEVEL is "loud"/],
    [{ DIAMOND_SPARK_MASTER: 'local[two]' }, /DIAMOND_SPARK_MASTER/],
    [{ DIAMOND_SPARK_DRIVER_MEMORY: '1 GB' }, /DIAMOND_SPARK_DRIVER_MEMORY/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => loadConfig(env), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', message);
    t.truthy(error?.hint, `hint for ${JSON.stringify(env)}`);
  }
});

test('parseHostPort reads IPv4, names and bracketed IPv6', (t) => {
  t.deepEqual(parseHostPort('X', '127.0.0.1:9092'), { host: '127.0.0.1', port: 9092 });
  t.deepEqual(parseHostPort('X', 'kafka:1'), { host: 'kafka', port: 1 });
  t.deepEqual(parseHostPort('X', '[::1]:9042'), { host: '::1', port: 9042 });
});

test('alert settings: defaults, durations with 0 for "at once", webhooks as a list, and bad values named', (t) => {
  const defaults = loadConfig({}).alerts;
  t.like(defaults, { lag: { threshold: 100_000, forMs: 300_000 }, batchP99: { threshold: 60_000, forMs: 300_000 }, crashLoopingForMs: 0, stalledForMs: 0, offsetsRetentionMs: 7 * 86_400_000, offsetsExpireWithinMs: 86_400_000, webhookRetries: 3 });
  t.deepEqual(defaults.webhooks, [], 'no webhook unless configured');
  const set = loadConfig({ DIAMOND_ALERT_LAG_RECORDS: '0', DIAMOND_ALERT_LAG_FOR: '0', DIAMOND_ALERT_WEBHOOKS: ' https://hooks.example/a?token=x , http://127.0.0.1:9/b ' }).alerts;
  t.like(set, { lag: { threshold: 0, forMs: 0 } });
  t.deepEqual(set.webhooks, ['https://hooks.example/a?token=x', 'http://127.0.0.1:9/b']);
  const cases: [Record<string, string>, RegExp][] = [
    [{ DIAMOND_ALERT_WEBHOOKS: 'ftp://x/y' }, /DIAMOND_ALERT_WEBHOOKS uses ftp:/],
    [{ DIAMOND_ALERT_LAG_RECORDS: '-1' }, /DIAMOND_ALERT_LAG_RECORDS/],
    [{ DIAMOND_ALERT_LAG_FOR: 'soon' }, /DIAMOND_ALERT_LAG_FOR/],
    [{ DIAMOND_ALERT_OFFSETS_EXPIRE_WITHIN: '7d' }, /not shorter than DIAMOND_ALERT_OFFSETS_RETENTION/],
    [{ DIAMOND_ALERT_WEBHOOK_RETRIES: '50' }, /DIAMOND_ALERT_WEBHOOK_RETRIES/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => loadConfig(env), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', message);
    t.truthy(error?.hint);
  }
});

test('history settings: archiver on, 60 days kept, records 7 days in Kafka by default; more than 60 days or part days refused', (t) => {
  t.deepEqual({ ...loadConfig({}).history }, { archive: true, retentionDays: 60, triggerMs: 10_000, recordsRetentionMs: 7 * 86_400_000 });
  t.like(loadConfig({ DIAMOND_HISTORY_ARCHIVE: '0', DIAMOND_HISTORY_RETENTION: '14d', DIAMOND_HISTORY_TRIGGER: '2s', DIAMOND_RECORDS_RETENTION: '60d' }).history, {
    archive: false, retentionDays: 14, triggerMs: 2000, recordsRetentionMs: 60 * 86_400_000,
  });
  t.is(loadConfig({ DIAMOND_HISTORY_RETENTION: '48h', DIAMOND_RECORDS_RETENTION: '12h' }).history.retentionDays, 2, 'whole days in hours are whole days');
  const cases: [Record<string, string>, RegExp][] = [
    [{ DIAMOND_HISTORY_RETENTION: '61d' }, /DIAMOND_HISTORY_RETENTION is "61d", more than 60 days/],
    [{ DIAMOND_RECORDS_RETENTION: '90d' }, /DIAMOND_RECORDS_RETENTION is "90d", more than 60 days/],
    [{ DIAMOND_HISTORY_RETENTION: '36h' }, /DIAMOND_HISTORY_RETENTION is "36h"/],
    [{ DIAMOND_HISTORY_RETENTION: 'forever' }, /DIAMOND_HISTORY_RETENTION/],
    [{ DIAMOND_HISTORY_ARCHIVE: 'yes' }, /DIAMOND_HISTORY_ARCHIVE/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => loadConfig(env), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', message);
    t.truthy(error?.hint);
  }
});
