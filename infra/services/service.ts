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
  /** Run as this user (a Spark worker runs tenant code in its executors: the job user when we are root). */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** One process of a service: the service itself in the single topology, or one node of its cluster. */
export interface ServiceNode {
  /** Names its pid, log and data files: the service's name, or e.g. kafka-2. */
  readonly name: string;
  /** 0-based position in the cluster (node ids, loopback address 127.0.0.<index + 1>). */
  readonly index: number;
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
  /** The processes it runs (default: one, named as the service). */
  nodes?(config: DiamondConfig): readonly ServiceNode[];
  /**
   * Nodes start one at a time, each answering `checkNode` before the next starts (Cassandra
   * joins a ring one node at a time; Spark workers need their master). Otherwise all start, then `check`.
   */
  checkNode?(config: DiamondConfig, node: ServiceNode): Promise<void>;
  /** Installs what is missing and returns how to start this node (null: nothing to run). */
  prepare(ctx: InstallContext, node: ServiceNode): Promise<Launch | null>;
  /** How long a cold start may take on 2 cores before `up` gives up. */
  readonly readyTimeoutMs: number;
}

export interface ServicePaths {
  readonly dataDir: string;
  readonly logFile: string;
  readonly pidFile: string;
  readonly installLog: string;
}

export function serviceNodes(service: Pick<LocalService, 'name' | 'nodes'>, config: DiamondConfig): readonly ServiceNode[] {
  return service.nodes?.(config) ?? [{ name: service.name, index: 0 }];
}

/** Nodes named <service>-1 … <service>-N (cluster), or the one node named as the service. */
export function numberedNodes(name: ServiceName, count: number): ServiceNode[] {
  return count === 1 ? [{ name, index: 0 }] : Array.from({ length: count }, (_, index) => ({ name: `${name}-${index + 1}`, index }));
}

export function servicePaths(config: DiamondConfig, name: string): ServicePaths {
  return {
    dataDir: join(config.home, 'data', name),
    logFile: join(config.home, 'logs', `${name}.log`),
    pidFile: join(config.home, 'run', `${name}.pid`),
    installLog: join(config.home, 'logs', `${name}-install.log`),
  };
}

/** A system property that marks every JVM we start, so `down` recognises exactly ours. */
export function jvmMarker(config: DiamondConfig, name: string): string {
  return `-Ddiamond.service=${name}@${config.home}`;
}

export function javaBinary(config: DiamondConfig): string {
  return join(config.javaHome, 'bin', 'java');
}
