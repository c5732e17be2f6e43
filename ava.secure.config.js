// The secured profile (docs/SECURITY.md): its own DIAMOND_HOME, every local service on its
// default port + 300, started secured by the test and stopped after it. Run through
// `npm run test:secure`, which holds the heavy and Spark locks for the whole run.
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const home = process.env.DIAMOND_SECURE_TEST_HOME || join(tmpdir(), 'diamond-secure-home');
const security = join(home, 'security');

export default {
  files: ['test/secure/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  concurrency: 1,
  serial: true,
  timeout: '20m',
  workerThreads: false,
  cache: false,
  // Explicit paths, not DIAMOND_SECURITY's defaults: the e2e support gives child processes homes of their own.
  environmentVariables: {
    DIAMOND_HOME: home,
    DIAMOND_SECURITY: '1',
    DIAMOND_KAFKA_BROKERS: '127.0.0.1:19392', DIAMOND_KAFKA_CONTROLLER_PORT: '19393',
    DIAMOND_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', DIAMOND_KAFKA_SASL_MECHANISM: 'scram-sha-512',
    DIAMOND_KAFKA_USERNAME: 'diamond', DIAMOND_KAFKA_PASSWORD_FILE: join(security, 'kafka.password'), DIAMOND_KAFKA_CA_FILE: join(security, 'ca.pem'),
    DIAMOND_REGISTRY_URL: 'https://127.0.0.1:18381/apis/ccompat/v7', DIAMOND_REGISTRY_MANAGEMENT_PORT: '19300',
    DIAMOND_REGISTRY_USERNAME: 'diamond', DIAMOND_REGISTRY_PASSWORD_FILE: join(security, 'registry.password'), DIAMOND_REGISTRY_CA_FILE: join(security, 'ca.pem'),
    DIAMOND_CASSANDRA_CONTACT_POINTS: '127.0.0.1:19342', DIAMOND_CASSANDRA_STORAGE_PORT: '17300', DIAMOND_CASSANDRA_JMX_PORT: '17499',
    DIAMOND_CASSANDRA_USERNAME: 'diamond', DIAMOND_CASSANDRA_PASSWORD_FILE: join(security, 'cassandra.password'), DIAMOND_CASSANDRA_TLS: '1', DIAMOND_CASSANDRA_CA_FILE: join(security, 'ca.pem'),
    DIAMOND_REDIS_URL: 'redis://127.0.0.1:16679', DIAMOND_REDIS_USERNAME: 'diamond', DIAMOND_REDIS_PASSWORD_FILE: join(home, 'redis.password'),
    DIAMOND_INGEST_PORT: '18380', DIAMOND_FEEDBACK_PORT: '18390', DIAMOND_CONTROL_PORT: '18370',
  },
};
