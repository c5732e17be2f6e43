/**
 * Where the platform's runtime lives on this machine: the Python virtualenv (pyspark and
 * the SDK's dependencies, keyed by the hash of its requirements), the Spark connector jars,
 * and the spark-submit command line every job and local session uses. Pure path and
 * command building: the local services install these things (infra/services), the
 * orchestrator and the CLI run them.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DiamondConfig } from './config.ts';
import { tenantEnv } from './tenant-env.ts';
import { Versions } from './versions.ts';

export interface PythonEnvironment {
  readonly root: string;
  readonly python: string;
  readonly sparkSubmit: string;
}

export function pythonRequirementsFile(config: DiamondConfig): string {
  return join(config.projectRoot, 'usecases', 'sdk', 'requirements.txt');
}

/** Where the virtualenv for the current requirements lives (keyed by their hash). */
export function pythonEnvironment(config: DiamondConfig): PythonEnvironment {
  const hash = createHash('sha256').update(readFileSync(pythonRequirementsFile(config))).digest('hex').slice(0, 12);
  const root = join(config.cacheDir, `venv-${hash}`);
  return { root, python: join(root, 'bin', 'python'), sparkSubmit: join(root, 'bin', 'spark-submit') };
}

/** The cache folder of the Spark connector jars (installed by `diamond services up`). */
export const SPARK_CONNECTORS = `spark-connectors-${Versions.spark}`;

export function connectorJarsDir(config: DiamondConfig): string {
  return join(config.cacheDir, SPARK_CONNECTORS, 'libs');
}

/** The connector jars every Spark job (and the local test session) loads. */
export function connectorJars(config: DiamondConfig): string[] {
  const dir = connectorJarsDir(config);
  return readdirSync(dir).filter((file) => file.endsWith('.jar')).map((file) => join(dir, file));
}

/** Environment for running the platform's Python (SDK, pytest, dry runs) outside spark-submit. */
export function pythonProcessEnv(config: DiamondConfig): NodeJS.ProcessEnv {
  const { python } = pythonEnvironment(config);
  return {
    ...process.env,
    PYTHONPATH: join(config.projectRoot, 'usecases', 'sdk'),
    JAVA_HOME: config.javaHome,
    PYSPARK_PYTHON: python,
    DIAMOND_SPARK_JARS: connectorJars(config).join(','),
  };
}

export interface SparkSubmit {
  readonly command: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
}

/** What one job adds to the platform's spark-submit (a use case's own Python environment). */
export interface SparkSubmitExtras {
  /** `--archives` entries (`file#alias`), unpacked in each executor's working directory. */
  readonly archives?: readonly string[];
  /** Environment variables that override the platform's (e.g. PYSPARK_PYTHON, HOME). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * The spark-submit command line for a Python application on the configured master, with
 * the connector jars, a small local driver, and the SDK importable. Its environment is an
 * allow-list (shared/tenant-env.ts) plus what Spark and Python need: a job runs tenant code
 * and gets none of the platform's settings or secrets (DIAMOND_TOKEN, the Redis URL…).
 */
/**
 * Spark's UI on a port the OS picks (jobs, spares and sessions never collide, nor take a
 * service's port), bound to loopback like the driver, with a short history: a streaming
 * job runs a job per batch, and the UI keeps what it shows in the driver's heap.
 */
function sparkUiSettings(enabled: boolean): Record<string, string> {
  if (!enabled) return { 'spark.ui.enabled': 'false' };
  return {
    'spark.ui.enabled': 'true',
    'spark.ui.port': '0',
    'spark.ui.retainedJobs': '100',
    'spark.ui.retainedStages': '100',
    'spark.ui.retainedTasks': '10000',
    'spark.sql.ui.retainedExecutions': '50',
    'spark.sql.streaming.ui.retainedQueries': '10',
    'spark.sql.streaming.ui.retainedProgressUpdates': '100',
  };
}

/**
 * Every driver's event log, for Spark's History Server (`diamond history`). Rolling files, so
 * a streaming job that runs for weeks leaves files the History Server can compact. Spark
 * refuses to start when the folder is missing, so it is made here, writable by the job user
 * (sticky like /tmp: a driver cannot delete another's logs).
 */
function eventLogSettings(dir: string | null): Record<string, string> {
  if (dir === null) return {};
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  try {
    chmodSync(dir, 0o1777);
  } catch {
    // not ours (another user made it): it is theirs to open
  }
  return {
    'spark.eventLog.enabled': 'true',
    'spark.eventLog.dir': `file://${dir}`,
    'spark.eventLog.rolling.enabled': 'true',
    'spark.eventLog.rolling.maxFileSize': '16m',
  };
}

/**
 * On a standalone master (spark://…) each driver gets one executor of a fixed size, capped so
 * an application cannot take every core of the cluster and leave the next one waiting. The
 * executors find the SDK where the driver has it: the workers here share this filesystem (a
 * remote cluster's image carries the checkout at the same path; docs/DEPLOY.md).
 */
function clusterSettings(config: DiamondConfig): Record<string, string> {
  if (!config.spark.master.startsWith('spark://')) return {};
  return {
    'spark.executor.memory': config.spark.executorMemory,
    'spark.executor.cores': String(config.spark.executorCores),
    'spark.cores.max': String(config.spark.executorCores),
    'spark.executorEnv.JAVA_HOME': config.javaHome,
  };
}

export function sparkSubmit(config: DiamondConfig, script: string, scriptArgs: readonly string[] = [], conf: Record<string, string> = {}, extras: SparkSubmitExtras = {}): SparkSubmit {
  const env = pythonEnvironment(config);
  const jars = connectorJars(config);
  const settings: Record<string, string> = {
    ...sparkUiSettings(config.spark.ui),
    ...eventLogSettings(config.spark.eventLogDir),
    'spark.driver.host': config.spark.driverHost,
    'spark.driver.bindAddress': config.spark.driverHost,
    ...clusterSettings(config),
    'spark.sql.shuffle.partitions': '2',
    'spark.sql.session.timeZone': 'UTC',
    'spark.ui.showConsoleProgress': 'false',
    ...conf,
  };
  if (config.spark.master.startsWith('spark://')) {
    // The use case's own packages (its archive, in conf) come first, then the SDK.
    settings['spark.executorEnv.PYTHONPATH'] = [conf['spark.executorEnv.PYTHONPATH'], join(config.projectRoot, 'usecases', 'sdk')].filter(Boolean).join(':');
  }
  return {
    command: env.sparkSubmit,
    args: [
      '--master', config.spark.master,
      '--driver-memory', config.spark.driverMemory,
      '--jars', jars.join(','),
      ...(extras.archives && extras.archives.length > 0 ? ['--archives', extras.archives.join(',')] : []),
      '--driver-java-options', `-Dlog4j2.configurationFile=${join(config.projectRoot, 'infra', 'services', 'spark-log4j2.properties')}`,
      ...Object.entries(settings).flatMap(([key, value]) => ['--conf', `${key}=${value}`]),
      script,
      ...scriptArgs,
    ],
    env: tenantEnv({
      // The caller's home for local runs; the orchestrator gives each job a private one.
      ...(process.env['HOME'] ? { HOME: process.env['HOME'] } : {}),
      JAVA_HOME: config.javaHome,
      PYSPARK_PYTHON: env.python,
      PYSPARK_DRIVER_PYTHON: env.python,
      PYTHONPATH: join(config.projectRoot, 'usecases', 'sdk'),
      SPARK_LOCAL_IP: config.spark.driverHost,
      ...extras.env,
    }),
  };
}
