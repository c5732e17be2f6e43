/**
 * A deployment names a folder whose code the platform installs and runs: only folders under
 * the configured use case roots (DIAMOND_USECASE_ROOTS) are accepted, so a deployer token
 * cannot make the orchestrator run an arbitrary directory (another user's files, /tmp).
 * Symlinks and `..` are resolved on both sides before comparing, so a link inside a root that
 * points outside it is refused too.
 *
 *   assertUnderUsecaseRoots(config, folder); // throws DIAMOND_USECASE_DIR_REFUSED (422)
 */
import { existsSync, realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';

/** The folder is outside every use case root (or does not exist): not deployable. */
export class UsecaseFolderRefusedError extends DiamondError {
  readonly folder: string;
  readonly roots: readonly string[];

  constructor(folder: string, roots: readonly string[], why: string) {
    super(`refused to deploy ${folder}: ${why}; allowed use case roots: ${roots.join(', ')}`, {
      code: 'DIAMOND_USECASE_DIR_REFUSED',
      hint: 'put the use case folder under one of those roots, or add its parent to DIAMOND_USECASE_ROOTS (comma-separated) of the orchestrator',
    });
    this.folder = folder;
    this.roots = roots;
  }
}

/** The real (symlink-free) path of `path`; a root that does not exist stays as resolved. */
function real(path: string): string {
  const absolute = resolve(path);
  return existsSync(absolute) ? realpathSync(absolute) : absolute;
}

/** Whether `folder` (resolved) lies strictly inside one of `roots` (resolved). */
export function isUnderUsecaseRoots(folder: string, roots: readonly string[]): boolean {
  const target = real(folder);
  return roots.map(real).some((root) => target !== root && target.startsWith(root.endsWith(sep) ? root : root + sep));
}

/** Throws UsecaseFolderRefusedError unless `folder` exists and lies under a configured root. */
export function assertUnderUsecaseRoots(config: Pick<DiamondConfig, 'usecases'>, folder: string): void {
  const roots = config.usecases.roots;
  if (!existsSync(folder)) throw new UsecaseFolderRefusedError(folder, roots, 'the folder does not exist');
  if (!isUnderUsecaseRoots(folder, roots)) throw new UsecaseFolderRefusedError(folder, roots, `it resolves to ${real(folder)}, outside the use case roots`);
}
