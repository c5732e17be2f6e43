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
import { servicePaths, SERVICE_NAMES, type LocalService, type ServiceName } from './service.ts';
import { ensureSecurityFiles } from './security.ts';
import { sparkService } from './spark.ts';

const SERVICES: readonly LocalService[] = [redisService, kafkaService, registryService, cassandraService, sparkService];

export function serviceByName(name: string): LocalService {
  const service = SERVICES.find((candidate) => candidate.name === name);
  if (!service) throw new DiamondError(`unknown service "${name}"`, { code: 'DIAMOND_UNKNOWN_SERVICE', hint: `use one of ${SERVICE_NAMES.join(', ')}` });
  return service;
}

export interface ServiceStatus {
  readonly name: ServiceName;
  readonly address: string;
  readonly healthy: boolean;
  readonly pid: number | null;
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

export async function servicesStatus(config: DiamondConfig): Promise<ServiceStatus[]> {
  const statuses: ServiceStatus[] = [];
  for (const service of SERVICES) {
    statuses.push({
      name: service.name,
      address: service.address(config),
      healthy: await isHealthy(service, config),
      pid: runningProcess(servicePaths(config, service.name).pidFile)?.pid ?? null,
    });
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
  const finish = async (outcome: UpOutcome, pid: number | null): Promise<UpResult> => {
    if (outcome !== 'external') {
      const changed = await service.ensureConfigured?.(config);
      if (changed) options.onStep?.(service.name, changed);
    }
    return finishNow(outcome, pid);
  };
  const finishNow = (outcome: UpOutcome, pid: number | null): UpResult => ({
    name: service.name, address, healthy: true, pid, outcome, logFile: paths.logFile,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  });

  const existing = runningProcess(paths.pidFile);
  if (await isHealthy(service, config)) {
    log.debug({ address }, 'already healthy, reusing');
    return finish(isLoopback(service.host(config)) ? 'reused' : 'external', existing?.pid ?? null);
  }
  if (!isLoopback(service.host(config))) {
    throw new ServiceUnavailableError(service.name, address, { hint: 'it is not on this machine, so Diamond does not start it: start it, or unset the DIAMOND_* variable to use a local one' });
  }

  const ctx = { config, logFile: paths.installLog, onStep: (message: string) => options.onStep?.(service.name, message) };
  if (existing) {
    // Ours, alive, but not answering: still starting (another `up` is waiting for it) or wedged.
    options.onStep?.(service.name, `pid ${existing.pid} is running but not ready yet; waiting`);
    await waitReady(service, config, existing.pid, paths.logFile, address);
    return finish('reused', existing.pid);
  }

  const launch = await service.prepare(ctx);
  if (!launch) {
    await waitReady(service, config, null, paths.installLog, address);
    return finish('installed', null);
  }
  options.onStep?.(service.name, `starting (log: ${paths.logFile})`);
  const record = startDetached({ ...launch, logFile: paths.logFile, pidFile: paths.pidFile });
  log.debug({ pid: record.pid, address }, 'started');
  await waitReady(service, config, record.pid, paths.logFile, address);
  return finish('started', record.pid);
}

/** Polls the real readiness check; fails at once if the process exits. */
async function waitReady(service: LocalService, config: DiamondConfig, pid: number | null, logFile: string, address: string): Promise<void> {
  const deadline = Date.now() + service.readyTimeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      await service.check(config);
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
    const paths = servicePaths(config, service.name);
    const outcome = await stopProcess(paths.pidFile, service.name === 'cassandra' ? 30_000 : 15_000);
    if (options.purge) rmSync(paths.dataDir, { recursive: true, force: true });
    results.push({ name: service.name, ...outcome });
  }
  return results;
}
