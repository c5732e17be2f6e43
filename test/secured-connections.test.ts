import { mkdtempSync, statSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import test from 'ava';
import { redactConfig, shownValue } from '../infra/cli/config-command.ts';
import { loadConfig, settingDocs } from '../shared/config.ts';
import { ConfigError } from '../shared/errors.ts';
import { jobConnections, writeJobConnections } from '../shared/job-connections.ts';
import { kafkaSecurityOptions } from '../shared/kafka.ts';
import { createLogger } from '../shared/logger.ts';

const SECRET = 'Tr0ub4dor-and-3';

function secretsDir(): { dir: string; file: (name: string, content: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'diamond-secrets-'));
  return { dir, file: (name, content) => { const path = join(dir, name); writeFileSync(path, content, { mode: 0o600 }); return path; } };
}

function securedEnv(): Record<string, string> {
  const { file } = secretsDir();
  return {
    DIAMOND_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    DIAMOND_KAFKA_SASL_MECHANISM: 'scram-sha-256',
    DIAMOND_KAFKA_USERNAME: 'diamond',
    DIAMOND_KAFKA_PASSWORD_FILE: file('kafka.password', `${SECRET}-kafka\n`),
    DIAMOND_KAFKA_CA_FILE: file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'),
    DIAMOND_CASSANDRA_USERNAME: 'diamond',
    DIAMOND_CASSANDRA_PASSWORD_FILE: file('cassandra.password', `${SECRET}-cassandra`),
    DIAMOND_CASSANDRA_TLS: '1',
    DIAMOND_REGISTRY_URL: 'https://127.0.0.1:18381/apis/ccompat/v7',
    DIAMOND_REGISTRY_USERNAME: 'diamond',
    DIAMOND_REGISTRY_PASSWORD_FILE: file('registry.password', `${SECRET}-registry`),
    DIAMOND_REDIS_URL: `rediss://diamond:${SECRET}-redis@127.0.0.1:16679`,
  };
}

test('the secured settings are read once into the config, passwords only as file paths', (t) => {
  const env = securedEnv();
  const config = loadConfig(env);
  t.is(config.kafka.security.protocol, 'SASL_SSL');
  t.deepEqual(config.kafka.security.sasl, { username: 'diamond', passwordFile: env['DIAMOND_KAFKA_PASSWORD_FILE'], mechanism: 'scram-sha-256' });
  t.deepEqual(config.cassandra.auth, { username: 'diamond', passwordFile: env['DIAMOND_CASSANDRA_PASSWORD_FILE'] });
  t.deepEqual(config.cassandra.tls, { caFile: null });
  t.is(config.redis.username, 'diamond');
  t.true(Object.isFrozen(config.kafka.security.sasl));
  const options = kafkaSecurityOptions(config.kafka.security);
  t.is(options.sasl?.mechanism, 'scram-sha-256');
  t.true(typeof options.ssl === 'object' && Array.isArray(options.ssl.ca), 'the CA file is trusted');
  t.is((options.sasl as { password: string }).password, `${SECRET}-kafka`, 'the trailing newline of the file is not part of the password');
});

test('a config dump (diamond config, config --json) carries no password', (t) => {
  const env = securedEnv();
  const config = loadConfig(env);
  // The object itself holds no password read from a file (a password given in DIAMOND_REDIS_URL is kept, for ioredis)…
  const raw = JSON.stringify(config);
  for (const service of ['kafka', 'cassandra', 'registry']) t.false(raw.includes(`${SECRET}-${service}`), service);
  // …and what prints it masks that one too.
  for (const dump of [JSON.stringify(redactConfig(config)), settingDocs(env).map((doc) => shownValue(doc.env, env[doc.env] ?? doc.default)).join('\n')]) {
    t.false(dump.includes(SECRET), dump.slice(0, 200));
  }
});

test('credentials are refused where they would leak or travel in clear, each naming the fix', (t) => {
  const env = securedEnv();
  const cases: [Record<string, string>, RegExp][] = [
    [{ ...env, DIAMOND_KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT' }, /SCRAM without TLS/],
    [{ ...env, DIAMOND_KAFKA_SECURITY_PROTOCOL: 'PLAINTEXT', DIAMOND_KAFKA_CA_FILE: '' }, /DIAMOND_KAFKA_USERNAME is set but DIAMOND_KAFKA_SECURITY_PROTOCOL is PLAINTEXT/],
    [{ ...env, DIAMOND_KAFKA_PASSWORD_FILE: '' }, /DIAMOND_KAFKA_USERNAME is set but DIAMOND_KAFKA_PASSWORD_FILE is empty/],
    [{ ...env, DIAMOND_KAFKA_PASSWORD: SECRET }, /DIAMOND_KAFKA_PASSWORD is set/],
    [{ ...env, DIAMOND_KAFKA_SASL_MECHANISM: 'plain' }, /DIAMOND_KAFKA_SASL_MECHANISM/],
    [{ ...env, DIAMOND_CASSANDRA_TLS: '0' }, /password would cross the network in clear/],
    [{ ...env, DIAMOND_REGISTRY_URL: 'http://127.0.0.1:18381/apis/ccompat/v7' }, /basic auth would cross the network in clear/],
    [{ ...env, DIAMOND_REGISTRY_URL: `https://diamond:${SECRET}@registry:8081` }, /DIAMOND_REGISTRY_URL carries credentials/],
  ];
  for (const [bad, message] of cases) {
    const error = t.throws(() => loadConfig(bad), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', message);
    t.truthy(error?.hint);
    t.false(`${error?.message} ${error?.hint}`.includes(SECRET), 'the error does not repeat the secret');
  }
  t.notThrows(() => loadConfig({ ...env, DIAMOND_KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', DIAMOND_KAFKA_CA_FILE: '', DIAMOND_ALLOW_PLAINTEXT_CREDENTIALS: '1' }), 'explicitly allowed');
});

test('a missing password file is an error naming the setting, read when a client is made', (t) => {
  const config = loadConfig({ ...securedEnv(), DIAMOND_KAFKA_PASSWORD_FILE: '/nonexistent/kafka.password' });
  const error = t.throws(() => kafkaSecurityOptions(config.kafka.security), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /DIAMOND_KAFKA_PASSWORD_FILE names \/nonexistent\/kafka.password, which cannot be read \(ENOENT\)/);
});

test('log lines never carry a password, at whatever depth a client option is logged', (t) => {
  const lines: string[] = [];
  const destination = new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(chunk.toString()); done(); } });
  const log = createLogger({ logLevel: 'info' }, { destination });
  const config = loadConfig(securedEnv());
  const options = kafkaSecurityOptions(config.kafka.security);
  log.info({ sasl: options.sasl }, 'top level');
  log.info({ kafka: { sasl: options.sasl } }, 'nested');
  log.info({ kafkajs: { namespace: 'Connection', client: { sasl: options.sasl } } }, 'kafkajs entry');
  log.info({ redis: { username: 'diamond', password: `${SECRET}-redis` } }, 'client options');
  log.info({ headers: { authorization: `Basic ${Buffer.from(`diamond:${SECRET}`).toString('base64')}` } }, 'request');
  t.is(lines.length, 5);
  for (const line of lines) {
    t.false(line.includes(SECRET) || line.includes(Buffer.from(`diamond:${SECRET}`).toString('base64')), line);
    t.true(line.includes('[redacted]'), line);
  }
});

test('a job gets its credentials in a 0600 file, and none when nothing is secured', (t) => {
  t.is(jobConnections(loadConfig({})), null);
  const dir = mkdtempSync(join(tmpdir(), 'diamond-job-'));
  t.deepEqual(writeJobConnections(loadConfig({}), join(dir, 'open.json')), []);
  t.false(existsSync(join(dir, 'open.json')));
  const file = join(dir, 'connections.json');
  const args = writeJobConnections(loadConfig(securedEnv()), file);
  t.deepEqual(args, ['--connections-file', file]);
  t.is(statSync(file).mode & 0o777, 0o600);
  const written = JSON.parse(readFileSync(file, 'utf8')) as { kafka: { password: string; saslMechanism: string }; registry: { password: string } };
  t.is(written.kafka.password, `${SECRET}-kafka`);
  t.is(written.kafka.saslMechanism, 'SCRAM-SHA-256');
  t.is(written.registry.password, `${SECRET}-registry`);
});
