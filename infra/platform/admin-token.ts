/**
 * The local platform file (`<home>/local.json`) that `diamond up` writes: the endpoints of
 * this config and an admin token for the local CLI. The token is reused while Redis still
 * grants it admin, so repeated `up`s do not pile up tokens; otherwise a new one is created.
 * Beside it, the runner token the feedback API's GET /v1/summary runs its function with
 * (DIAMOND_SUMMARY_TOKEN_FILE, 0600), kept the same way: downstream reads it per request, so
 * writing it after downstream started is enough.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { createRedis } from '../../shared/redis.ts';
import { platformEndpoints, readLocalPlatform, writeLocalPlatform } from './platform-file.ts';
import { defaultOrchestratorOptions } from '../orchestrator/options.ts';
import { roleAllows, TokenStore } from '../../shared/operator-tokens.ts';

export interface LocalPlatformFile {
  readonly path: string;
  /** False when the token already in the file still verifies as admin. */
  readonly tokenCreated: boolean;
  /** The runner token file of GET /v1/summary, and whether this call wrote a new token into it. */
  readonly summaryTokenFile: string;
  readonly summaryTokenCreated: boolean;
}

/** Keeps a token of role runner (or above: the operator's choice) in the summary token file. */
async function ensureSummaryToken(config: DiamondConfig, tokens: TokenStore): Promise<boolean> {
  const file = config.summary.tokenFile;
  const existing = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  const grant = existing ? await tokens.verify(existing) : null;
  if (grant && roleAllows(grant.role, 'runner')) return false;
  const token = await tokens.add('runner', 'feedback-api summary');
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Renamed into place: downstream never reads a half-written token.
  writeFileSync(`${file}.tmp`, `${token}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return true;
}

export async function writeLocalPlatformFile(config: DiamondConfig): Promise<LocalPlatformFile> {
  // The control API verifies tokens under the orchestrator's key prefix.
  const redis = createRedis(config, { keyPrefix: defaultOrchestratorOptions(config).keyPrefix });
  try {
    await redis.connect();
    const tokens = new TokenStore(redis);
    const existing = readLocalPlatform(config)?.token;
    const grant = existing ? await tokens.verify(existing) : null;
    const token = existing && grant?.role === 'admin' ? existing : await tokens.add('admin', 'diamond up');
    const path = writeLocalPlatform(config, { ...platformEndpoints(config), token });
    const summaryTokenCreated = await ensureSummaryToken(config, tokens);
    return { path, tokenCreated: token !== existing, summaryTokenFile: config.summary.tokenFile, summaryTokenCreated };
  } finally {
    redis.disconnect();
  }
}
