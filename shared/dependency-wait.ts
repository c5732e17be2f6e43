/**
 * Waiting for the servers a platform process needs (Kafka, the registry, Cassandra, Redis)
 * instead of exiting when one is down at start: one probe per dependency, retried with
 * jittered exponential backoff and one log line per attempt, until it answers or the wait
 * (`DIAMOND_DEPENDENCY_WAIT`, default forever) is over. Used by `diamond serve orchestrator`,
 * `serve upstream` and `serve downstream`.
 *
 *   const upstream = await startWhenReady(dependenciesOf(config, ['registry', 'redis']),
 *     () => startUpstream(config, { logger }), { logger, waitMs: config.platform.dependencyWaitMs });
 *
 * Decisions read error types only: a probe failing with a retriable DiamondError
 * (ServiceUnavailableError) means "not there yet"; any other error is fatal at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelayMs, type BackoffPolicy } from './backoff.ts';
import { checkCassandra } from './cassandra.ts';
import type { DiamondConfig } from './config.ts';
import { DiamondError } from './errors.ts';
import { checkKafka } from './kafka.ts';
import type { Logger } from './logger.ts';
import { checkRedis } from './redis.ts';
import { checkRegistry } from './registry.ts';

export type DependencyName = 'kafka' | 'registry' | 'cassandra' | 'redis';

export interface Dependency {
  /** As people say it: 'Kafka', 'schema registry'. */
  readonly name: string;
  readonly address: string;
  /** Resolves when the server answers; rejects with a retriable DiamondError while it does not. */
  probe(): Promise<unknown>;
}

/** The probes of the named servers, in the order given (the order they are waited for). */
export function dependenciesOf(config: DiamondConfig, names: readonly DependencyName[]): Dependency[] {
  const all: Record<DependencyName, Dependency> = {
    kafka: { name: 'Kafka', address: config.kafka.brokers.join(','), probe: () => checkKafka(config) },
    registry: { name: 'schema registry', address: config.registry.url, probe: () => checkRegistry(config) },
    cassandra: { name: 'Cassandra', address: config.cassandra.contactPoints.join(','), probe: () => checkCassandra(config) },
    redis: { name: 'Redis', address: redactUrl(config.redis.url), probe: () => checkRedis(config) },
  };
  return names.map((name) => all[name]);
}

export interface WaitOptions {
  readonly logger: Logger;
  /** Total wait before giving up; null = forever. */
  readonly waitMs: number | null;
  /** Default 500 ms → 15 s. */
  readonly backoff?: BackoffPolicy;
}

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 15_000 };

/** Gave up waiting: the dependency did not answer within DIAMOND_DEPENDENCY_WAIT. */
export class DependencyWaitTimeoutError extends DiamondError {
  readonly dependency: string;

  constructor(dependency: Dependency, waitedMs: number, cause: unknown) {
    super(`${dependency.name} at ${dependency.address} did not answer within ${Math.round(waitedMs / 1000)} s`, {
      code: 'DIAMOND_DEPENDENCY_TIMEOUT',
      hint: 'start it (`npx diamond services up` for the local ones) or fix its DIAMOND_* address; DIAMOND_DEPENDENCY_WAIT sets how long to wait (default forever)',
      cause,
    });
    this.dependency = dependency.name;
  }
}

/** A failure that waiting can cure: a retriable DiamondError anywhere in the cause chain. */
export function isOutage(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let current = error; current instanceof Error && !seen.has(current); current = current.cause) {
    seen.add(current);
    if (current instanceof DiamondError && current.retriable) return true;
  }
  return false;
}

/** Resolves once every dependency answered (each waited for in turn); throws when the wait is over or a probe fails for good. */
export async function waitForDependencies(dependencies: readonly Dependency[], options: WaitOptions, deadline = deadlineOf(options.waitMs)): Promise<void> {
  for (const dependency of dependencies) await waitForOne(dependency, options, deadline);
}

/**
 * Waits for the dependencies, then runs `start`. When `start` fails and a dependency is
 * unreachable again (it went away between the probe and the start), or the error itself is
 * an outage, it waits and starts again; `start` must clean up after a failed attempt.
 */
export async function startWhenReady<T>(dependencies: readonly Dependency[], start: () => Promise<T>, options: WaitOptions): Promise<T> {
  const deadline = deadlineOf(options.waitMs);
  for (let attempt = 1; ; attempt += 1) {
    await waitForDependencies(dependencies, options, deadline);
    try {
      return await start();
    } catch (error) {
      const down = isOutage(error) ? null : await firstDown(dependencies);
      if (!isOutage(error) && down === null) throw error;
      const delayMs = backoffDelayMs(attempt, options.backoff ?? DEFAULT_BACKOFF);
      if (Date.now() + delayMs > deadline) throw error;
      options.logger.warn({ err: error, attempt, nextInMs: delayMs }, `start failed while a dependency is unavailable (attempt ${attempt}, next in ${seconds(delayMs)})`);
      await sleep(delayMs);
    }
  }
}

async function waitForOne(dependency: Dependency, options: WaitOptions, deadline: number): Promise<void> {
  const started = Date.now();
  for (let attempt = 1; ; attempt += 1) {
    try {
      await dependency.probe();
      if (attempt > 1) options.logger.info({ dependency: dependency.name, address: dependency.address, attempts: attempt }, `${dependency.name} at ${dependency.address} answers; going on`);
      return;
    } catch (error) {
      if (!isOutage(error)) throw error;
      const delayMs = backoffDelayMs(attempt, options.backoff ?? DEFAULT_BACKOFF);
      if (Date.now() + delayMs > deadline) throw new DependencyWaitTimeoutError(dependency, Date.now() - started, error);
      options.logger.warn(
        { dependency: dependency.name, address: dependency.address, attempt, nextInMs: delayMs, err: error },
        `waiting for ${dependency.name} at ${dependency.address} (attempt ${attempt}, next in ${seconds(delayMs)})`,
      );
      await sleep(delayMs);
    }
  }
}

async function firstDown(dependencies: readonly Dependency[]): Promise<Dependency | null> {
  for (const dependency of dependencies) {
    const up = await dependency.probe().then(() => true, (error: unknown) => !isOutage(error));
    if (!up) return dependency;
  }
  return null;
}

function deadlineOf(waitMs: number | null): number {
  return waitMs === null ? Number.POSITIVE_INFINITY : Date.now() + waitMs;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** A Redis URL may carry a password; the log line names only where it is. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
