/**
 * PySpark: a virtualenv with pyspark and the SDK's dependencies, plus the Kafka and Avro
 * connector jars that the wheel does not ship. Not a server: with a local[N] master each
 * job is its own spark-submit process (the orchestrator starts those).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DiamondConfig } from '../../shared/config.ts';
import { ServiceUnavailableError } from '../../shared/errors.ts';
import { installMavenJars, installPythonEnvironment, pythonEnvironment, type InstallContext } from './artifacts.ts';
import type { LocalService } from './service.ts';
import { Versions } from './versions.ts';

const CONNECTORS = `spark-connectors-${Versions.spark}`;

export function connectorJarsDir(config: DiamondConfig): string {
  return join(config.cacheDir, CONNECTORS, 'libs');
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

export async function installSpark(ctx: InstallContext): Promise<void> {
  await installMavenJars('spark', CONNECTORS, 'spark-connectors.xml', { 'spark.version': Versions.spark }, ctx);
  await installPythonEnvironment(ctx);
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
  /** Environment variables that override the platform's (e.g. PYSPARK_PYTHON). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * The spark-submit command line for a Python application on the configured master, with
 * the connector jars, a small local driver, and the SDK importable.
 */
export function sparkSubmit(config: DiamondConfig, script: string, scriptArgs: readonly string[] = [], conf: Record<string, string> = {}, extras: SparkSubmitExtras = {}): SparkSubmit {
  const env = pythonEnvironment(config);
  const jars = connectorJars(config);
  const settings: Record<string, string> = {
    'spark.ui.enabled': 'false',
    'spark.driver.host': '127.0.0.1',
    'spark.driver.bindAddress': '127.0.0.1',
    'spark.sql.shuffle.partitions': '2',
    'spark.sql.session.timeZone': 'UTC',
    'spark.ui.showConsoleProgress': 'false',
    ...conf,
  };
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
    env: {
      ...process.env,
      JAVA_HOME: config.javaHome,
      PYSPARK_PYTHON: env.python,
      PYSPARK_DRIVER_PYTHON: env.python,
      PYTHONPATH: join(config.projectRoot, 'usecases', 'sdk'),
      SPARK_LOCAL_IP: '127.0.0.1',
      ...extras.env,
    },
  };
}

const execFileAsync = promisify(execFile);

export const sparkService: LocalService = {
  name: 'spark',
  readyTimeoutMs: 5_000,
  address: (config) => config.spark.master,
  host: () => '127.0.0.1',
  check: async (config) => {
    const env = pythonEnvironment(config);
    const jarsDir = connectorJarsDir(config);
    if (!existsSync(env.python) || !existsSync(jarsDir)) {
      throw new ServiceUnavailableError('Spark', config.spark.master, { hint: 'install it with `npx diamond services up`' });
    }
    try {
      await execFileAsync(env.python, ['-c', 'import pyspark, fastavro, confluent_kafka; print(pyspark.__version__)'], { timeout: 20_000 });
    } catch (cause) {
      throw new ServiceUnavailableError('Spark', config.spark.master, { cause, hint: `the virtualenv ${env.root} is broken: remove it and run \`npx diamond services up\`` });
    }
  },
  prepare: async (ctx) => {
    await installSpark(ctx);
    return null;
  },
};
