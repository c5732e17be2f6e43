/**
 * The code version of a use case folder: the same hash as the SDK's
 * `diamond_sdk._runtime.version.code_version` (sha256 over relative path and bytes of every file,
 * sorted by path, leaving out tests/, __pycache__/, .pytest_cache/, *.pyc and *.jsonl; 12 hex).
 * A changed folder is a new version, which the orchestrator rolls out as an upgrade.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, sep } from 'node:path';

const SKIP_DIRS = new Set(['__pycache__', '.pytest_cache', 'tests']);

function filesUnder(folder: string): string[] {
  const entries = readdirSync(folder, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(folder.length + 1));
}

/** Python sorts `Path` objects part by part, comparing code points; sort the same way. */
function comparePaths(a: string, b: string): number {
  const left = a.split(sep);
  const right = b.split(sep);
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    if (left[i] !== right[i]) return left[i]! < right[i]! ? -1 : 1;
  }
  return left.length - right.length;
}

export function codeVersion(folder: string): string {
  const root = folder.replace(/\/+$/, '');
  const digest = createHash('sha256');
  for (const relative of filesUnder(root).sort(comparePaths)) {
    if (relative.split(sep).some((part) => SKIP_DIRS.has(part))) continue;
    if (['.pyc', '.jsonl'].includes(extname(relative))) continue;
    digest.update(Buffer.from(relative, 'utf8'));
    digest.update(Buffer.from([0]));
    digest.update(readFileSync(join(root, relative)));
    digest.update(Buffer.from([0]));
  }
  return digest.digest('hex').slice(0, 12);
}
