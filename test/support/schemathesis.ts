/**
 * Schemathesis (PyPI, pinned in shared/versions.ts) in its own virtualenv under the install
 * cache, built once; `fuzzApi` runs it against a running API's /openapi.json.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cached, runLogged } from '../../shared/install-cache.ts';
import type { DiamondConfig } from '../../shared/config.ts';
import { Versions } from '../../shared/versions.ts';

export async function schemathesisBinary(config: DiamondConfig): Promise<string> {
  const dir = join(config.cacheDir, `schemathesis-${Versions.schemathesis}`);
  const ctx = { config, logFile: join(config.home, 'logs', 'schemathesis-install.log') };
  await cached(dir, async (target) => {
    await runLogged('schemathesis', 'python3', ['-m', 'venv', target], ctx);
    await runLogged('schemathesis', join(target, 'bin', 'pip'), ['install', '--quiet', `schemathesis==${Versions.schemathesis}`], ctx);
  });
  return join(dir, 'bin', 'schemathesis');
}

export interface FuzzRun {
  readonly code: number;
  readonly output: string;
}

/**
 * Every operation of the document with generated and boundary inputs; the checks: no 5xx,
 * every status, content type and body as documented, and a route that ignores a missing or
 * wrong credential fails (ignored_auth). Deterministic: a fixed seed. Endless streams (SSE)
 * are left out (`excludePaths`): a fuzzer reads each answer to its end; their own tests cover them.
 */
export function fuzzApi(binary: string, baseUrl: string, credential: string, options: { maxExamples?: number; excludePaths?: readonly string[] } = {}): Promise<FuzzRun> {
  const args = [
    'run', `${baseUrl}/openapi.json`, '--header', `Authorization: Bearer ${credential}`,
    '--checks', 'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth',
    '--max-examples', String(options.maxExamples ?? 25), '--workers', '1', '--seed', '20261202', '--request-timeout', '20',
    ...(options.excludePaths ?? []).flatMap((path) => ['--exclude-path', path]),
  ];
  return new Promise((resolve) => {
    // In a temp folder: it keeps a .schemathesis/ cache in its working directory, and the checkout stays clean.
    execFile(binary, args, { cwd: mkdtempSync(join(tmpdir(), 'diamond-schemathesis-')), timeout: 240_000, maxBuffer: 16 * 2 ** 20, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}
