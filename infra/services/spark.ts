/**
 * PySpark: installs a virtualenv with pyspark and the SDK's dependencies, plus the Kafka and
 * Avro connector jars that the wheel does not ship (where they live, and the spark-submit
 * command line, are in shared/runtime-paths.ts). Not a server: with a local[N] master each
 * job is its own spark-submit process (the orchestrator starts those).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { ServiceUnavailableError } from '../../shared/errors.ts';
import type { InstallContext } from '../../shared/install-cache.ts';
import { connectorJarsDir, pythonEnvironment, SPARK_CONNECTORS } from '../../shared/runtime-paths.ts';
import { Versions } from '../../shared/versions.ts';
import { installMavenJars, installPythonEnvironment } from './artifacts.ts';
import type { LocalService } from './service.ts';

export async function installSpark(ctx: InstallContext): Promise<void> {
  await installMavenJars('spark', SPARK_CONNECTORS, 'spark-connectors.xml', { 'spark.version': Versions.spark }, ctx);
  await installPythonEnvironment(ctx);
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
