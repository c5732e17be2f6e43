/**
 * PySpark: installs a virtualenv with pyspark and the SDK's dependencies, plus the Kafka and
 * Avro connector jars that the wheel does not ship (where they live, and the spark-submit
 * command line, are in shared/runtime-paths.ts). With a local[N] master it is not a server:
 * each job is its own spark-submit process (the orchestrator starts those). In the cluster
 * topology it also runs a standalone master and DIAMOND_SPARK_WORKERS workers from the
 * wheel's spark-class (it has no start scripts); jobs keep their driver under the
 * orchestrator (client mode) and get executors on the workers.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { DiamondConfig } from '../../shared/config.ts';
import { parseHostPort } from '../../shared/config.ts';
import { ServiceUnavailableError } from '../../shared/errors.ts';
import { jobUser, openPathTo, ownDir, sparkWorkerDir } from '../orchestrator/job-user.ts';
import type { InstallContext } from '../../shared/install-cache.ts';
import { connectorJarsDir, pythonEnvironment, SPARK_CONNECTORS } from '../../shared/runtime-paths.ts';
import { Versions } from '../../shared/versions.ts';
import { installMavenJars, installPythonEnvironment } from './artifacts.ts';
import { jvmMarker, servicePaths, type Launch, type LocalService, type ServiceNode } from './service.ts';

export async function installSpark(ctx: InstallContext): Promise<void> {
  await installMavenJars('spark', SPARK_CONNECTORS, 'spark-connectors.xml', { 'spark.version': Versions.spark }, ctx);
  await installPythonEnvironment(ctx);
}

const execFileAsync = promisify(execFile);

function standaloneMaster(config: DiamondConfig): { host: string; port: number } | null {
  if (config.topology !== 'cluster' || !config.spark.master.startsWith('spark://')) return null;
  return parseHostPort('DIAMOND_SPARK_MASTER', config.spark.master.slice('spark://'.length));
}

interface MasterState {
  readonly status?: string;
  readonly aliveworkers?: number;
  readonly workers?: readonly { readonly id: string; readonly host: string; readonly state: string }[];
}

/** The local master's own account of itself (its web UI's JSON). */
export async function standaloneState(config: DiamondConfig): Promise<MasterState> {
  const url = `http://127.0.0.1:${config.spark.workers.masterUiPort}/json/`;
  const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as MasterState;
}

/** Workers on 127.0.0.2, 127.0.0.3, … (the master has 127.0.0.1), each its own web UI port. */
function workerHost(index: number): string {
  return `127.0.0.${index + 2}`;
}

function daemonLaunch(config: DiamondConfig, node: ServiceNode, mainClass: string, args: readonly string[], user?: { uid: number; gid: number }): Launch {
  const env = pythonEnvironment(config);
  const marker = jvmMarker(config, node.name);
  return {
    command: join(dirname(env.python), 'spark-class'),
    args: [mainClass, ...args],
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      JAVA_HOME: config.javaHome,
      // spark-class puts these on the JVM's command line: the marker is how `down` knows it is ours.
      SPARK_DAEMON_JAVA_OPTS: marker,
      SPARK_DAEMON_MEMORY: '256m',
      PYSPARK_PYTHON: env.python,
    },
    cwd: servicePaths(config, node.name).dataDir,
    marker,
    ...(user ? { user } : {}),
  };
}

export const sparkService: LocalService = {
  name: 'spark',
  readyTimeoutMs: 60_000,
  address: (config) => config.spark.master,
  host: (config) => standaloneMaster(config)?.host ?? '127.0.0.1',
  nodes: (config) => (standaloneMaster(config)
    ? [{ name: 'spark-master', index: 0 }, ...Array.from({ length: config.spark.workers.count }, (_, index) => ({ name: `spark-worker-${index + 1}`, index: index + 1 }))]
    : [{ name: 'spark', index: 0 }]),
  checkNode: async (config, node) => {
    const state = await standaloneState(config);
    if (state.status !== 'ALIVE') throw new Error(`the master is ${state.status ?? 'not answering'}`);
    if (node.index === 0) return;
    const host = workerHost(node.index - 1);
    if (!state.workers?.some((worker) => worker.host === host && worker.state === 'ALIVE')) throw new Error(`no live worker on ${host} yet`);
  },
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
    if (!standaloneMaster(config)) return;
    try {
      const state = await standaloneState(config);
      const alive = state.aliveworkers ?? 0;
      if (state.status !== 'ALIVE' || alive < config.spark.workers.count) throw new Error(`master ${state.status ?? '?'}, ${alive} of ${config.spark.workers.count} workers alive`);
    } catch (cause) {
      throw new ServiceUnavailableError('Spark', config.spark.master, { cause, hint: 'start the standalone cluster with `npx diamond services up`' });
    }
  },
  prepare: async (ctx, node) => {
    const { config } = ctx;
    await installSpark(ctx);
    const master = standaloneMaster(config);
    if (!master || node.name === 'spark') return null;
    const { dataDir } = servicePaths(config, node.name);
    mkdirSync(dataDir, { recursive: true });
    if (node.index === 0) {
      return daemonLaunch(config, node, 'org.apache.spark.deploy.master.Master', [
        '--host', master.host, '--port', String(master.port), '--webui-port', String(config.spark.workers.masterUiPort),
      ]);
    }
    // Executors run use case code: as root we hand the worker (and so them) to the job user.
    const user = jobUser(config);
    const workDir = sparkWorkerDir(config, node.name);
    if (user) {
      ownDir(workDir, user);
      openPathTo(workDir, user);
    } else {
      mkdirSync(workDir, { recursive: true });
    }
    return daemonLaunch(config, node, 'org.apache.spark.deploy.worker.Worker', [
      '--host', workerHost(node.index - 1),
      '--webui-port', String(config.spark.workers.masterUiPort + node.index),
      '--cores', String(config.spark.workers.cores),
      '--memory', config.spark.workers.memory,
      '--work-dir', workDir,
      `spark://${master.host}:${master.port}`,
    ], user ? { uid: user.uid, gid: user.gid } : undefined);
  },
};
