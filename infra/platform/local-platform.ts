/**
 * `diamond up`'s part for the platform's own processes (see platform-components.ts): it
 * makes sure the supervisor runs (platform-supervisor.ts: it starts the orchestrator,
 * upstream and downstream and restarts any that exits), then waits until each one serves.
 * `stopComponent` is `diamond down`'s, after it stopped the supervisor.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { isAlive, runningProcess, stopProcess, tailFile } from '../../shared/process-group.ts';
import { componentPaths, isHealthy, platformComponents, type ComponentName, type PlatformComponent } from './platform-components.ts';
import { ensureSupervisor, readSupervisorState, supervisorPaths } from './platform-supervisor.ts';

/** started: by this call; reused: ours, already serving; external: serving, but not started by `diamond up` (left alone by `down`). */
export type ComponentOutcome = 'started' | 'reused' | 'external';

export interface ComponentResult {
  readonly name: ComponentName;
  readonly healthUrl: string;
  readonly outcome: ComponentOutcome;
  readonly pid: number | null;
  readonly seconds: number;
  readonly logFile: string;
}

export interface PlatformUpOptions {
  /** Environment of the started processes (they load the same config from it). */
  readonly env: NodeJS.ProcessEnv;
  /** Default `platformComponents(config)`. */
  readonly components?: readonly PlatformComponent[];
  /** A component is being started or waited for (before its result). */
  readonly onStep?: (name: ComponentName, message: string) => void;
  readonly onResult?: (result: ComponentResult) => void;
}

/** A component did not come up; names each one, its log tail and what to do. */
export class PlatformStartError extends DiamondError {
  constructor(failures: readonly { name: ComponentName; message: string; logFile: string }[]) {
    const details = failures.map((f) => `${f.name}: ${f.message}\n--- ${f.logFile} (last lines) ---\n${tailFile(f.logFile, 20) || '(empty)'}`).join('\n\n');
    super(`${failures.map((f) => f.name).join(', ')} did not start\n\n${details}`, {
      code: 'DIAMOND_PLATFORM_START_FAILED',
      hint: 'fix what the log names (a port in use: change DIAMOND_*_PORT), then run `npx diamond up` again; what did start keeps running (`npx diamond down --keep-services` stops it)',
    });
  }
}

export interface SupervisorResult {
  readonly outcome: 'started' | 'reused';
  readonly pid: number;
  readonly logFile: string;
  /** Restarts per component since the first `up` of this home (from the supervisor's state file). */
  readonly restarts: Readonly<Partial<Record<ComponentName, number>>>;
}

/**
 * Makes sure the supervisor runs (it starts every component that does not run), then waits
 * for each one's health URL. Idempotent: a running supervisor and serving components are
 * reused. Components are reported in order.
 */
export async function platformUp(config: DiamondConfig, log: Logger, options: PlatformUpOptions): Promise<ComponentResult[]> {
  return (await platformUpSupervised(config, log, options)).components;
}

/** `platformUp`, with what it did about the supervisor (for `diamond up`'s report). */
export async function platformUpSupervised(config: DiamondConfig, log: Logger, options: PlatformUpOptions): Promise<{ supervisor: SupervisorResult; components: ComponentResult[] }> {
  const components = options.components ?? platformComponents(config);
  const started = performance.now();
  const secondsSoFar = (): number => Math.round((performance.now() - started) / 100) / 10;
  // What runs before the supervisor is asked for anything decides each outcome.
  const before = await Promise.all(components.map(async (component) => {
    const ours = runningProcess(componentPaths(config, component.name).pidFile);
    if (await isHealthy(component.healthUrl)) return { outcome: ours ? 'reused' as const : 'external' as const, pid: ours?.pid ?? null, serving: true };
    return { outcome: ours ? 'reused' as const : 'started' as const, pid: ours?.pid ?? null, serving: false };
  }));
  const supervisor = ensureSupervisor(config, components, options.env);
  log.debug({ supervisor }, 'supervisor');
  const waits = components.map(async (component, index) => {
    const known = before[index]!;
    if (known.serving) return { outcome: known.outcome, pid: known.pid, seconds: secondsSoFar() };
    options.onStep?.(component.name, known.pid === null ? `starting (log: ${componentPaths(config, component.name).logFile})` : `pid ${known.pid} is running but does not answer yet; waiting`);
    const pid = await waitServing(config, component, supervisor.pid);
    return { outcome: known.outcome, pid, seconds: secondsSoFar() };
  }).map((wait) => wait.then(
    (done) => ({ ok: true as const, ...done }),
    (error: unknown) => ({ ok: false as const, message: error instanceof Error ? error.message : String(error) }),
  ));
  const results: ComponentResult[] = [];
  const failures: { name: ComponentName; message: string; logFile: string }[] = [];
  for (const [index, component] of components.entries()) {
    const { logFile } = componentPaths(config, component.name);
    const done = await waits[index]!;
    if (!done.ok) {
      failures.push({ name: component.name, message: done.message, logFile });
      continue;
    }
    const result: ComponentResult = { name: component.name, healthUrl: component.healthUrl, outcome: done.outcome, pid: done.pid, seconds: done.seconds, logFile };
    results.push(result);
    options.onResult?.(result);
  }
  if (failures.length > 0) throw new PlatformStartError(failures);
  const restarts = Object.fromEntries((readSupervisorState(config)?.components ?? []).map((c) => [c.name, c.restarts]));
  return { supervisor: { ...supervisor, logFile: supervisorPaths(config).logFile, restarts }, components: results };
}

/**
 * Resolves with the pid once the component's process (started by the supervisor) serves.
 * Fails when the process exits before it answers (the supervisor restarts it with backoff,
 * but a component that cannot start is for `up` to report), when the supervisor is gone,
 * or after the component's ready timeout.
 */
async function waitServing(config: DiamondConfig, component: PlatformComponent, supervisorPid: number): Promise<number> {
  const { pidFile } = componentPaths(config, component.name);
  const deadline = Date.now() + component.readyTimeoutMs;
  let seen: number | null = null;
  for (;;) {
    const record = runningProcess(pidFile);
    if (record && (await isHealthy(component.healthUrl))) return record.pid;
    if (seen !== null && record?.pid !== seen) throw new Error(`pid ${seen} exited before ${component.healthUrl} answered (the supervisor restarts it with backoff; \`npx diamond down\` stops it)`);
    seen = record?.pid ?? seen;
    if (!isAlive(supervisorPid)) throw new Error(`the supervisor (pid ${supervisorPid}) exited before ${component.name} served; see ${supervisorPaths(config).logFile}`);
    if (Date.now() > deadline) throw new Error(`${seen === null ? 'no process' : `pid ${seen} runs, but ${component.healthUrl}`} did not answer within ${component.readyTimeoutMs / 1000} s`);
    await sleep(250);
  }
}

export interface ComponentStop {
  readonly name: ComponentName;
  readonly pid: number | null;
  readonly stopped: boolean;
  readonly forced: boolean;
}

/** Stops the process `up` recorded for the component (SIGTERM, SIGKILL after its grace). */
export async function stopComponent(config: DiamondConfig, name: ComponentName, components: readonly PlatformComponent[] = platformComponents(config)): Promise<ComponentStop> {
  const graceMs = components.find((c) => c.name === name)?.stopGraceMs ?? 15_000;
  return { name, ...(await stopProcess(componentPaths(config, name).pidFile, graceMs)) };
}
