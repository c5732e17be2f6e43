/**
 * The platform's own processes on this machine: the orchestrator (reconcile loop + control
 * API), upstream (ingest API + raw-topic normalizer) and downstream (feedback writers +
 * feedback API), each a `diamond serve <side>` started like the local services: its own
 * process group, output in `<home>/logs/platform-<name>.log`, pid in
 * `<home>/run/platform-<name>.pid`, and a process title naming it and the home, so a stop
 * never hits a reused pid or another checkout's process.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { platformEndpoints } from './platform-file.ts';
import { isAlive, runningProcess, startDetached, stopProcess, tailFile } from '../../shared/process-group.ts';

export const PLATFORM_COMPONENTS = ['orchestrator', 'upstream', 'downstream'] as const;
export type ComponentName = (typeof PLATFORM_COMPONENTS)[number];

export interface PlatformComponent {
  readonly name: ComponentName;
  /** Arguments of the `diamond` CLI, e.g. ['serve', 'upstream']. */
  readonly args: readonly string[];
  /** Answers 200 once the component serves. */
  readonly healthUrl: string;
  /** How long a cold start may take on 2 cores. */
  readonly readyTimeoutMs: number;
  /** SIGTERM → SIGKILL grace on stop (the writers finish their batch). */
  readonly stopGraceMs: number;
}

/** What `diamond up` runs, in the order it reports them. */
export function platformComponents(config: DiamondConfig): PlatformComponent[] {
  const { controlUrl, ingestUrl, feedbackUrl } = platformEndpoints(config);
  return [
    { name: 'orchestrator', args: ['serve', 'orchestrator'], healthUrl: `${controlUrl}/healthz`, readyTimeoutMs: 90_000, stopGraceMs: 15_000 },
    { name: 'upstream', args: ['serve', 'upstream'], healthUrl: `${ingestUrl}/healthz`, readyTimeoutMs: 90_000, stopGraceMs: 15_000 },
    { name: 'downstream', args: ['serve', 'downstream'], healthUrl: `${feedbackUrl}/healthz`, readyTimeoutMs: 90_000, stopGraceMs: 30_000 },
  ];
}

export function componentPaths(config: Pick<DiamondConfig, 'home'>, name: ComponentName): { logFile: string; pidFile: string } {
  return { logFile: join(config.home, 'logs', `platform-${name}.log`), pidFile: join(config.home, 'run', `platform-${name}.pid`) };
}

/** Node's `--title` replaces the command line that `ps` and /proc show: it is the marker. */
export function componentMarker(config: Pick<DiamondConfig, 'home'>, name: ComponentName): string {
  return `diamond-${name}@${config.home}`;
}

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

/**
 * Starts every component that is not already serving (all at once: they need only the
 * services), then waits for each one's health URL. Idempotent: serving ones are reused.
 */
export async function platformUp(config: DiamondConfig, log: Logger, options: PlatformUpOptions): Promise<ComponentResult[]> {
  const components = options.components ?? platformComponents(config);
  const started = performance.now();
  const secondsSoFar = (): number => Math.round((performance.now() - started) / 100) / 10;
  // Every component starts and is waited for at once; results are reported in order.
  const waits = components.map((component) => bringUp(config, component, options, log).then(
    ({ outcome, pid }) => ({ ok: true as const, outcome, pid, seconds: secondsSoFar() }),
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
  return results;
}

/** Reuses the component when it serves, else starts it; resolves once it serves. */
async function bringUp(config: DiamondConfig, component: PlatformComponent, options: PlatformUpOptions, log: Logger): Promise<{ outcome: ComponentOutcome; pid: number | null }> {
  const { logFile, pidFile } = componentPaths(config, component.name);
  const ours = runningProcess(pidFile);
  if (await isHealthy(component.healthUrl)) {
    log.debug({ component: component.name, pid: ours?.pid }, 'already serving, reusing');
    return { outcome: ours ? 'reused' : 'external', pid: ours?.pid ?? null };
  }
  // Ours and alive but not answering: still starting (another `up`) or wedged; wait for it.
  if (ours) {
    options.onStep?.(component.name, `pid ${ours.pid} is running but does not answer yet; waiting`);
    return { outcome: 'reused', pid: await waitHealthy(component, ours.pid) };
  }
  const marker = componentMarker(config, component.name);
  const record = startDetached({
    command: process.execPath,
    args: [`--title=${marker}`, join(config.projectRoot, 'infra', 'cli', 'bin.js'), ...component.args],
    env: options.env, cwd: config.projectRoot, logFile, pidFile, marker,
  });
  log.debug({ component: component.name, pid: record.pid, logFile }, 'started');
  options.onStep?.(component.name, `starting, pid ${record.pid} (log: ${logFile})`);
  return { outcome: 'started', pid: await waitHealthy(component, record.pid) };
}

async function isHealthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** Polls the health URL; fails at once when the process exits. */
async function waitHealthy(component: PlatformComponent, pid: number): Promise<number> {
  const deadline = Date.now() + component.readyTimeoutMs;
  for (;;) {
    if (await isHealthy(component.healthUrl)) return pid;
    if (!isAlive(pid)) throw new Error(`pid ${pid} exited before ${component.healthUrl} answered`);
    if (Date.now() > deadline) throw new Error(`pid ${pid} runs, but ${component.healthUrl} did not answer within ${component.readyTimeoutMs / 1000} s`);
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
