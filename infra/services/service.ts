/** What every local service provides to `diamond services …`. */
import { join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import type { InstallContext } from '../../shared/install-cache.ts';

export const SERVICE_NAMES = ['redis', 'kafka', 'registry', 'cassandra', 'spark'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Part of the command line that identifies this instance (see shared/process-group.ts). */
  readonly marker: string;
}

export interface LocalService {
  readonly name: ServiceName;
  /** What a client connects to (for the registry: its Confluent-compatible base URL). */
  address(config: DiamondConfig): string;
  /** Host of that address: only loopback services are started by the project. */
  host(config: DiamondConfig): string;
  /** A real client call; throws ServiceUnavailableError when it does not answer. */
  check(config: DiamondConfig): Promise<void>;
  /**
   * Brings a running local instance to the settings this file wants (for one started by an
   * older version); returns what it changed, or null. Optional: most services need nothing.
   */
  ensureConfigured?(config: DiamondConfig): Promise<string | null>;
  /** Installs what is missing and returns how to start it (null: nothing to run). */
  prepare(ctx: InstallContext): Promise<Launch | null>;
  /** How long a cold start may take on 2 cores before `up` gives up. */
  readonly readyTimeoutMs: number;
}

export interface ServicePaths {
  readonly dataDir: string;
  readonly logFile: string;
  readonly pidFile: string;
  readonly installLog: string;
}

export function servicePaths(config: DiamondConfig, name: ServiceName): ServicePaths {
  return {
    dataDir: join(config.home, 'data', name),
    logFile: join(config.home, 'logs', `${name}.log`),
    pidFile: join(config.home, 'run', `${name}.pid`),
    installLog: join(config.home, 'logs', `${name}-install.log`),
  };
}

/** A system property that marks every JVM we start, so `down` recognises exactly ours. */
export function jvmMarker(config: DiamondConfig, name: ServiceName): string {
  return `-Ddiamond.service=${name}@${config.home}`;
}

export function javaBinary(config: DiamondConfig): string {
  return join(config.javaHome, 'bin', 'java');
}
