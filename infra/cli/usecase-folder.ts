/** Where the `diamond usecase` commands find a use case by name. */
import { join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';

export function usecaseFolder(config: DiamondConfig, name: string, root: string | undefined): string {
  return join(root ?? join(config.projectRoot, 'usecases'), name);
}

export const rootOption = { type: 'string', describe: 'folder holding use cases (default: usecases/ of this checkout)' } as const;
