/**
 * The platform's own processes on this machine: the orchestrator (reconcile loop + control
 * API), upstream (ingest API + raw-topic normalizer) and downstream (feedback writers +
 * feedback API), each a `diamond serve <side>` started like the local services: its own
 * process group, output in `<home>/logs/platform-<name>.log`, pid in
 * `<home>/run/platform-<name>.pid`, and a process title naming it and the home, so a stop
 * never hits a reused pid or another checkout's process.
 */
import { join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { startDetached, type PidRecord } from '../../shared/process-group.ts';
import { platformEndpoints } from './platform-file.ts';

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
    { name: 'orchestrator', args: ['serve', 'orchestrator'], healthUrl: `${controlUrl}/readyz`, readyTimeoutMs: 90_000, stopGraceMs: 15_000 },
    { name: 'upstream', args: ['serve', 'upstream'], healthUrl: `${ingestUrl}/readyz`, readyTimeoutMs: 90_000, stopGraceMs: 15_000 },
    { name: 'downstream', args: ['serve', 'downstream'], healthUrl: `${feedbackUrl}/readyz`, readyTimeoutMs: 90_000, stopGraceMs: 30_000 },
  ];
}

export function componentPaths(config: Pick<DiamondConfig, 'home'>, name: ComponentName): { logFile: string; pidFile: string } {
  return { logFile: join(config.home, 'logs', `platform-${name}.log`), pidFile: join(config.home, 'run', `platform-${name}.pid`) };
}

/** Node's `--title` replaces the command line that `ps` and /proc show: it is the marker. */
export function componentMarker(config: Pick<DiamondConfig, 'home'>, name: ComponentName): string {
  return `diamond-${name}@${config.home}`;
}

/** `diamond serve <side>` in its own process group, marked, its pid in its pid file. */
export function startComponent(config: DiamondConfig, component: PlatformComponent, env: NodeJS.ProcessEnv): PidRecord {
  const { logFile, pidFile } = componentPaths(config, component.name);
  const marker = componentMarker(config, component.name);
  return startDetached({
    command: process.execPath,
    args: [`--title=${marker}`, join(config.projectRoot, 'infra', 'cli', 'bin.js'), ...component.args],
    env, cwd: config.projectRoot, logFile, pidFile, marker,
  });
}

export async function isHealthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}
