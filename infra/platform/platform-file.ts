/**
 * The local platform's connection file, written by `diamond up`: where its HTTP endpoints
 * listen and the admin token the local CLI uses when DIAMOND_TOKEN is not set. It lives
 * under DIAMOND_HOME with mode 0600 (it holds a credential). Also the endpoints a config
 * names. The CLI, the demo and the platform read it from here; the orchestrator never does
 * (its caller injects the endpoints it reports).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';

export interface LocalPlatform {
  readonly controlUrl: string;
  readonly ingestUrl: string;
  readonly feedbackUrl: string;
  /** Admin token created by `diamond up`. */
  readonly token: string;
  readonly writtenAt: string;
}

export function localConfigPath(config: Pick<DiamondConfig, 'home'>): string {
  return join(config.home, 'local.json');
}

export function readLocalPlatform(config: Pick<DiamondConfig, 'home'>): LocalPlatform | null {
  const path = localConfigPath(config);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LocalPlatform;
  } catch {
    return null;
  }
}

export function writeLocalPlatform(config: Pick<DiamondConfig, 'home'>, platform: Omit<LocalPlatform, 'writtenAt'>): string {
  const path = localConfigPath(config);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ ...platform, writtenAt: new Date().toISOString() }, null, 2) + '\n', { mode: 0o600 });
  return path;
}

/** The endpoints of this config (what `diamond status` prints and `diamond up` writes). */
export function platformEndpoints(config: Pick<DiamondConfig, 'http'>): { controlUrl: string; ingestUrl: string; feedbackUrl: string } {
  const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host;
  return {
    controlUrl: `http://${host}:${config.http.controlPort}`,
    ingestUrl: `http://${host}:${config.http.ingestPort}`,
    feedbackUrl: `http://${host}:${config.http.feedbackPort}`,
  };
}
