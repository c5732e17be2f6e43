/**
 * `diamond services up | down | status`: the five local services, started one at a time
 * in dependency order (Redis → Kafka → registry → Cassandra → Spark), each reused when it
 * already answers, each stopped by the pid we recorded.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isLoopback, type DiamondConfig } from '../../shared/config.ts';
import { DiamondError, ServiceStartError, ServiceUnavailableError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { cassandraService } from './cassandra.ts';
import { kafkaService } from './kafka.ts';
import { isAlive, runningProcess, startDetached, stopProcess, tailFile } from '../../shared/process-group.ts';
import { redisService } from './redis.ts';
import { registryService } from './registry.ts';
import { serviceNodes, servicePaths, SERVICE_NAMES, type LocalService, type ServiceName, type ServiceNode } from './service.ts';
import { ensureSecurityFiles } from './security.ts';
import { sparkService } from './spark.ts';

const SERVICES: readonly LocalService[] = [redisService, kafkaService, registryService, cassandraService, sparkService];

export function serviceByName(name: string): LocalService {
  const service = SERVICES.find((candidate) => candidate.name === name);
  if (!service) throw new DiamondError(`unknown service "${name}"`, { code: 'DIAMOND_UNKNOWN_SERVICE', hint: `use one of ${SERVICE_NAMES.join(', ')}` });
  return service;
}

export interface NodeStatus {
  readonly name: string;
  readonly pid: number | null;
}

export interface ServiceStatus {
  readonly name: ServiceName;
  readonly address: string;
  readonly healthy: boolean;
  /** The first node's pid (the only one in the single topology). */
  readonly pid: number | null;
  /** Every process of the service: one, or each node of its local cluster. */
  readonly nodes: readonly NodeStatus[];
}

export type UpOutcome = 'reused' | 'started' | 'external' | 'installed';

export interface UpResult extends ServiceStatus {
  readonly outcome: UpOutcome;
  readonly seconds: number;
  readonly logFile: string;
}

export interface UpOptions {
  readonly only?: readonly ServiceName[];
  readonly onStep?: (service: ServiceName, message: string) => void;
  readonly onResult?: (result: UpResult) => void;
}

async function isHealthy(service: LocalService, config: DiamondConfig): Promise<boolean> {
  try {
    await service.check(config);
    return true;
  } catch {
    return false;
  }
}

function nodeStatuses(service: LocalService, config: DiamondConfig): NodeStatus[] {
  return serviceNodes(service, config).map((node) => ({ name: node.name, pid: runningProcess(servicePaths(config, node.name).pidFile)?.pid ?? null }));
}

export async function servicesStatus(config: DiamondConfig): Promise<ServiceStatus[]> {
  const statuses: ServiceStatus[] = [];
  for (const service of SERVICES) {
    const nodes = nodeStatuses(service, config);
    statuses.push({ name: service.name, address: service.address(config), healthy: await isHealthy(service, config), pid: nodes[0]?.pid ?? null, nodes });
  }
  return statuses;
}

export async function servicesUp(config: DiamondConfig, logger: Logger, options: UpOptions = {}): Promise<UpResult[]> {
  const results: UpResult[] = [];
  ensureSecurityFiles(config); // DIAMOND_SECURITY=1: the CA, certificates and passwords, once
  for (const service of SERVICES) {
    if (options.only && !options.only.includes(service.name)) continue;
    const result = await bringUp(service, config, logger.child({ service: service.name }), options);
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}

async function bringUp(service: LocalService, config: DiamondConfig, log: Logger, options: UpOptions): Promise<UpResult> {
  const started = performance.now();
  const paths = servicePaths(config, service.name);
  const address = service.address(config);
  const nodes = serviceNodes(service, config);
  const logFile = servicePaths(config, nodes[0]?.name ?? service.name).logFile;
  const finish = async (outcome: UpOutcome): Promise<UpResult> => {
    if (outcome !== 'external') {
      const changed = await service.ensureConfigured?.(config);
      if (changed) options.onStep?.(service.name, changed);
    }
    const statuses = nodeStatuses(service, config);
    return {
      name: service.name, address, healthy: true, pid: statuses[0]?.pid ?? null, nodes: statuses, outcome, logFile,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  };

  if (await isHealthy(service, config)) {
    log.debug({ address }, 'already healthy, reusing');
    return finish(isLoopback(service.host(config)) ? 'reused' : 'external');
  }
  if (!isLoopback(service.host(config))) {
    throw new ServiceUnavailableError(service.name, address, { hint: 'it is not on this machine, so Diamond does not start it: start it, or unset the DIAMOND_* variable to use a local one' });
  }

  const ctx = { config, logFile: paths.installLog, onStep: (message: string) => options.onStep?.(service.name, message) };
  const label = (node: ServiceNode): string => (nodes.length > 1 ? `${node.name}: ` : '');
  let startedAny = false;
  let waitedAny = false;
  let lastPid: number | null = null;
  let lastLog = paths.installLog;
  for (const node of nodes) {
    const nodePaths = servicePaths(config, node.name);
    const nodeCheck = service.checkNode?.bind(service);
    const checkNode = nodeCheck ? () => nodeCheck(config, node) : null;
    const existing = runningProcess(nodePaths.pidFile);
    if (existing) {
      // Ours, alive, but the service does not answer: still starting (another `up` waits for it), wedged, or waiting for its peers.
      options.onStep?.(service.name, `${label(node)}pid ${existing.pid} is running but not ready yet; waiting`);
      waitedAny = true;
      if (checkNode) await waitReady(service, checkNode, existing.pid, nodePaths.logFile, address);
      [lastPid, lastLog] = [existing.pid, nodePaths.logFile];
      continue;
    }
    const launch = await service.prepare(ctx, node);
    if (!launch) continue;
    options.onStep?.(service.name, `${label(node)}starting (log: ${nodePaths.logFile})`);
    const record = startDetached({ ...launch, logFile: nodePaths.logFile, pidFile: nodePaths.pidFile });
    log.debug({ pid: record.pid, node: node.name, address }, 'started');
    startedAny = true;
    [lastPid, lastLog] = [record.pid, nodePaths.logFile];
    if (checkNode) await waitReady(service, checkNode, record.pid, nodePaths.logFile, address);
  }
  await waitReady(service, () => service.check(config), lastPid, lastLog, address);
  return finish(startedAny ? 'started' : waitedAny ? 'reused' : 'installed');
}

/** Polls a real readiness check; fails at once if the process exits. */
async function waitReady(service: LocalService, check: () => Promise<unknown>, pid: number | null, logFile: string, address: string): Promise<void> {
  const deadline = Date.now() + service.readyTimeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      lastError = error;
    }
    if (pid !== null && !isAlive(pid)) {
      throw new ServiceStartError(service.name, `exited before it was ready at ${address}`, { hint: `see ${logFile}:\n${tailFile(logFile)}` });
    }
    if (Date.now() > deadline) {
      throw new ServiceStartError(service.name, `not ready at ${address} after ${service.readyTimeoutMs / 1000} s`, { cause: lastError, hint: `see ${logFile}:\n${tailFile(logFile)}` });
    }
    await sleep(500);
  }
}

export interface DownResult {
  readonly name: ServiceName;
  readonly pid: number | null;
  readonly stopped: boolean;
  readonly forced: boolean;
}

/** Stops, in reverse order, exactly the processes `up` started; `purge` also deletes their data. */
export async function servicesDown(config: DiamondConfig, options: { purge?: boolean; only?: readonly ServiceName[] } = {}): Promise<DownResult[]> {
  const results: DownResult[] = [];
  for (const service of [...SERVICES].reverse()) {
    if (options.only && !options.only.includes(service.name)) continue;
    const outcomes = [];
    for (const node of [...serviceNodes(service, config)].reverse()) {
      const paths = servicePaths(config, node.name);
      outcomes.push(await stopProcess(paths.pidFile, service.name === 'cassandra' ? 30_000 : 15_000));
      if (options.purge) rmSync(paths.dataDir, { recursive: true, force: true });
    }
    const first = outcomes.at(-1) ?? { pid: null, stopped: false, forced: false };
    results.push({ name: service.name, pid: first.pid, stopped: outcomes.some((outcome) => outcome.stopped), forced: outcomes.some((outcome) => outcome.forced) });
  }
  return results;
}
