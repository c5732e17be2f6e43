/**
 * Image build step (infra/deploy/Dockerfile): installs what a Spark job needs — the Kafka and
 * Avro connector jars and the Python virtualenv with pyspark and the SDK's pinned packages —
 * into DIAMOND_CACHE_DIR with the very installers `diamond services up` uses. So the image holds
 * them exactly where shared/runtime-paths.ts looks (the virtualenv keyed by the hash of
 * usecases/sdk/requirements.txt), with their completion markers, and nothing in the image can
 * drift from what the tests run on this machine.
 *
 *   DIAMOND_CACHE_DIR=/opt/diamond/cache node --import tsx infra/deploy/install-runtime.ts
 *
 * Prints the virtualenv's folder (the Dockerfile links Spark's conf folder from it).
 */
import { join } from 'node:path';
import { loadConfig } from '../../shared/config.ts';
import { pythonEnvironment } from '../../shared/runtime-paths.ts';
import { installSpark } from '../services/spark.ts';

const config = loadConfig(process.env);
await installSpark({
  config,
  logFile: join(config.home, 'logs', 'image-install.log'),
  onStep: (message) => process.stderr.write(`${message}\n`),
});
process.stdout.write(`${pythonEnvironment(config).root}\n`);
