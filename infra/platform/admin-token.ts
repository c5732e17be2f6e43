/**
 * The local platform file (`<home>/local.json`) that `diamond up` writes: the endpoints of
 * this config and an admin token for the local CLI. The token is reused while Redis still
 * grants it admin, so repeated `up`s do not pile up tokens; otherwise a new one is created.
 */
import type { DiamondConfig } from '../../shared/config.ts';
import { createRedis } from '../../shared/redis.ts';
import { platformEndpoints, readLocalPlatform, writeLocalPlatform } from './platform-file.ts';
import { defaultOrchestratorOptions } from '../orchestrator/options.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';

export interface LocalPlatformFile {
  readonly path: string;
  /** False when the token already in the file still verifies as admin. */
  readonly tokenCreated: boolean;
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
    return { path, tokenCreated: token !== existing };
  } finally {
    redis.disconnect();
  }
}
