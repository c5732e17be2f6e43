/**
 * The credentials and CA certificates a Spark job needs to reach Kafka and the registry, handed
 * to it in a 0600 file owned by the job's user (the runner reads it before any use case code
 * runs, then removes it). Never the job's environment nor its command line: those show in
 * `ps`, /proc and the job's log. No file at all when nothing is secured, so open clusters run
 * exactly as before.
 *
 *   const args = writeJobConnections(config, join(dir, `${stamp}.connections.json`), user);
 *   // args: [] or ['--connections-file', file]
 */
import { chownSync, writeFileSync } from 'node:fs';
import type { DiamondConfig } from './config.ts';
import { readCaFile, readSecretFile } from './secret-file.ts';

/** What the file holds (read by usecases/sdk/diamond_sdk/_runtime/connections.py). */
export interface JobConnections {
  readonly kafka: {
    readonly securityProtocol: string;
    readonly saslMechanism: string | null;
    readonly username: string | null;
    readonly password: string | null;
    readonly caPem: string | null;
  };
  readonly registry: {
    readonly username: string | null;
    readonly password: string | null;
    readonly caPem: string | null;
  };
}

/** null when Kafka is PLAINTEXT and the registry needs neither auth nor a CA. */
export function jobConnections(config: Pick<DiamondConfig, 'kafka' | 'registry'>): JobConnections | null {
  const { security } = config.kafka;
  const { auth, caFile } = config.registry;
  if (security.protocol === 'PLAINTEXT' && auth === null && caFile === null) return null;
  return {
    kafka: {
      securityProtocol: security.protocol,
      saslMechanism: security.sasl ? security.sasl.mechanism.toUpperCase() : null,
      username: security.sasl?.username ?? null,
      password: security.sasl ? readSecretFile('DIAMOND_KAFKA_PASSWORD_FILE', security.sasl.passwordFile) : null,
      caPem: readCaFile('DIAMOND_KAFKA_CA_FILE', security.caFile) ?? null,
    },
    registry: {
      username: auth?.username ?? null,
      password: auth ? readSecretFile('DIAMOND_REGISTRY_PASSWORD_FILE', auth.passwordFile) : null,
      caPem: readCaFile('DIAMOND_REGISTRY_CA_FILE', caFile) ?? null,
    },
  };
}

/** Writes the file (0600, chowned to `owner` when the job runs as another user) and returns the runner's arguments for it. */
export function writeJobConnections(config: Pick<DiamondConfig, 'kafka' | 'registry'>, file: string, owner?: { readonly uid: number; readonly gid: number } | null): string[] {
  const connections = jobConnections(config);
  if (connections === null) return [];
  writeFileSync(file, JSON.stringify(connections), { mode: 0o600 });
  if (owner) chownSync(file, owner.uid, owner.gid);
  return ['--connections-file', file];
}
