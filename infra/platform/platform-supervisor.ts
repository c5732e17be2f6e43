/**
 * The supervisor of the platform's own processes: a small detached process (`diamond serve
 * platform`, started by `diamond up`) that starts the orchestrator, upstream and downstream
 * and restarts any of them that exits, with exponential backoff and jitter.
 *
 *   up ──► supervisor (pid file run/platform-supervisor.pid)
 *            ├─ orchestrator ─ exits ─► backoff (1 s, 2 s, 4 s … 1 m, ±20 %) ─► started again
 *            ├─ upstream
 *            └─ downstream
 *   down ─► stops the supervisor first (so it restarts nothing), then the processes
 *
 * It watches the processes through their pid files (they are not necessarily its children:
 * after a restart of the supervisor it adopts the running ones, as the orchestrator adopts
 * jobs). What it sees — pid, state, restarts, last exit — is written to
 * `run/platform-supervisor.json` for `diamond up` to report, and each restart is a log line
 * in `logs/platform-supervisor.log`. The restart counters are read back from that file when
 * the supervisor itself starts again, so they count across supervisor restarts.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelayMs, type BackoffPolicy } from '../../shared/backoff.ts';
import type { DiamondConfig } from '../../shared/config.ts';
import type { Logger } from '../../shared/logger.ts';
import { runningProcess, startDetached, stopProcess } from '../../shared/process-group.ts';
import { componentPaths, isHealthy, PLATFORM_COMPONENTS, platformComponents, startComponent, type ComponentName, type PlatformComponent } from './platform-components.ts';

/** A process that ran this long before it exited counts as healthy: its next restart starts the backoff over. */
export const STABLE_AFTER_MS = 60_000;
const POLL_MS = 500;

export type SupervisedState = 'running' | 'backoff' | 'external';

/** What the supervisor knows about one process; the JSON of the state file. */
export interface SupervisedComponent {
  readonly name: ComponentName;
  readonly state: SupervisedState;
  readonly pid: number | null;
  /** When the current process was started (or adopted), epoch ms. */
  readonly since: number | null;
  /** Restarts after an exit, in total (first starts are not counted). */
  readonly restarts: number;
  /** Exits in a row without a stable run in between; sets the next backoff. */
  readonly consecutiveExits: number;
  readonly lastExit: { readonly pid: number; readonly at: string } | null;
  readonly nextStartAt: string | null;
}

export interface SupervisorState {
  readonly pid: number;
  readonly updatedAt: string;
  readonly components: readonly SupervisedComponent[];
}

export function supervisorPaths(config: Pick<DiamondConfig, 'home'>): { pidFile: string; logFile: string; stateFile: string; specFile: string } {
  return {
    pidFile: join(config.home, 'run', 'platform-supervisor.pid'),
    logFile: join(config.home, 'logs', 'platform-supervisor.log'),
    stateFile: join(config.home, 'run', 'platform-supervisor.json'),
    specFile: join(config.home, 'run', 'platform-supervisor.spec.json'),
  };
}

export function supervisorMarker(config: Pick<DiamondConfig, 'home'>): string {
  return `diamond-supervisor@${config.home}`;
}

/** An exit seen at `now`: counts it and schedules the restart. Pure (tested without processes). */
export function afterExit(component: SupervisedComponent, now: number, policy: BackoffPolicy, random: () => number = Math.random): SupervisedComponent {
  const stable = component.since !== null && now - component.since >= STABLE_AFTER_MS;
  const consecutiveExits = (stable ? 0 : component.consecutiveExits) + 1;
  const delayMs = backoffDelayMs(consecutiveExits, policy, random);
  return {
    ...component, state: 'backoff', consecutiveExits,
    lastExit: component.pid === null ? component.lastExit : { pid: component.pid, at: new Date(now).toISOString() },
    pid: null, since: null, nextStartAt: new Date(now + delayMs).toISOString(),
  };
}

export function readSupervisorState(config: Pick<DiamondConfig, 'home'>): SupervisorState | null {
  const { stateFile } = supervisorPaths(config);
  if (!existsSync(stateFile)) return null;
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as SupervisorState;
  } catch {
    return null;
  }
}

/** The components `up` asked for (a test runs them with other arguments), else the default ones. */
export function readSupervisedComponents(config: DiamondConfig): PlatformComponent[] {
  const { specFile } = supervisorPaths(config);
  if (!existsSync(specFile)) return platformComponents(config);
  const parsed = JSON.parse(readFileSync(specFile, 'utf8')) as PlatformComponent[];
  if (!Array.isArray(parsed) || !parsed.every((c) => (PLATFORM_COMPONENTS as readonly string[]).includes(c.name) && Array.isArray(c.args))) {
    throw new Error(`${specFile} is not a list of platform components; delete it and run \`npx diamond up\` again`);
  }
  return parsed;
}

/** Starts the supervisor unless it runs; it then starts whatever of `components` does not run. */
export function ensureSupervisor(config: DiamondConfig, components: readonly PlatformComponent[], env: NodeJS.ProcessEnv): { outcome: 'started' | 'reused'; pid: number } {
  const { pidFile, logFile, specFile } = supervisorPaths(config);
  const running = runningProcess(pidFile);
  if (running) return { outcome: 'reused', pid: running.pid };
  mkdirSync(dirname(specFile), { recursive: true });
  writeFileSync(specFile, JSON.stringify(components, null, 2) + '\n');
  const marker = supervisorMarker(config);
  const record = startDetached({
    command: process.execPath,
    args: [`--title=${marker}`, join(config.projectRoot, 'infra', 'cli', 'bin.js'), 'serve', 'platform'],
    env, cwd: config.projectRoot, logFile, pidFile, marker,
  });
  return { outcome: 'started', pid: record.pid };
}

/** SIGTERM to the supervisor (it restarts nothing from then on); the processes keep running. */
export async function stopSupervisor(config: Pick<DiamondConfig, 'home'>): Promise<{ stopped: boolean; pid: number | null; forced: boolean }> {
  return stopProcess(supervisorPaths(config).pidFile, 10_000);
}

export interface SuperviseOptions {
  readonly components: readonly PlatformComponent[];
  /** Environment of the started processes. */
  readonly env: NodeJS.ProcessEnv;
  /** Ends the loop; the processes keep running. */
  readonly signal: AbortSignal;
}

/** Runs until the signal aborts: starts what does not run, restarts what exits. */
export async function superviseComponents(config: DiamondConfig, log: Logger, options: SuperviseOptions): Promise<void> {
  const policy: BackoffPolicy = { initialMs: config.platform.restartBackoffMs, maxMs: config.platform.restartBackoffMaxMs };
  const previous = new Map((readSupervisorState(config)?.components ?? []).map((c) => [c.name, c]));
  const states = new Map<ComponentName, SupervisedComponent>();
  for (const component of options.components) {
    const before = previous.get(component.name);
    const base: SupervisedComponent = {
      name: component.name, state: 'running', pid: null, since: null, restarts: before?.restarts ?? 0,
      consecutiveExits: before?.consecutiveExits ?? 0, lastExit: before?.lastExit ?? null, nextStartAt: null,
    };
    const ours = runningProcess(componentPaths(config, component.name).pidFile);
    if (ours) {
      log.info({ component: component.name, pid: ours.pid }, `adopted ${component.name} (pid ${ours.pid})`);
      states.set(component.name, { ...base, pid: ours.pid, since: Date.now() });
    } else if (await isHealthy(component.healthUrl)) {
      // Serving, but not started by `diamond up` (e.g. `diamond serve upstream` in a terminal): not ours to restart.
      log.info({ component: component.name, healthUrl: component.healthUrl }, `${component.name} is served by a process diamond up did not start; leaving it alone`);
      states.set(component.name, { ...base, state: 'external' });
    } else {
      const record = startComponent(config, component, options.env);
      log.info({ component: component.name, pid: record.pid }, `started ${component.name} (pid ${record.pid})`);
      states.set(component.name, { ...base, pid: record.pid, since: Date.now() });
    }
  }
  const save = (): void => writeState(config, [...states.values()]);
  save();

  while (!options.signal.aborted) {
    let changed = false;
    for (const component of options.components) {
      const current = states.get(component.name)!;
      const now = Date.now();
      if (current.state === 'running' && runningProcess(componentPaths(config, component.name).pidFile)?.pid !== current.pid) {
        const next = afterExit(current, now, policy);
        log.warn(
          { component: component.name, pid: current.pid, consecutiveExits: next.consecutiveExits, restarts: current.restarts, nextStartAt: next.nextStartAt },
          `${component.name} (pid ${current.pid}) exited; restarting it at ${next.nextStartAt} (exit ${next.consecutiveExits} in a row; log: ${componentPaths(config, component.name).logFile})`,
        );
        states.set(component.name, next);
        changed = true;
      } else if (current.state === 'backoff' && current.nextStartAt !== null && now >= Date.parse(current.nextStartAt)) {
        const record = startComponent(config, component, options.env);
        const restarts = current.restarts + 1;
        log.info({ component: component.name, pid: record.pid, restarts }, `restarted ${component.name} (pid ${record.pid}, restart ${restarts})`);
        states.set(component.name, { ...current, state: 'running', pid: record.pid, since: now, restarts, nextStartAt: null });
        changed = true;
      }
    }
    if (changed) save();
    await sleep(POLL_MS, undefined, { signal: options.signal }).catch(() => undefined);
  }
  log.info('supervisor stopping; the platform processes keep running');
}

/** Written whole and renamed, so a reader never sees half a file. */
function writeState(config: DiamondConfig, components: readonly SupervisedComponent[]): void {
  const { stateFile } = supervisorPaths(config);
  const state: SupervisorState = { pid: process.pid, updatedAt: new Date().toISOString(), components };
  mkdirSync(dirname(stateFile), { recursive: true });
  writeFileSync(`${stateFile}.tmp`, JSON.stringify(state, null, 2) + '\n');
  renameSync(`${stateFile}.tmp`, stateFile);
}
