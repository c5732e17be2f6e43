/**
 * The static validators of the deployment files (infra/deploy/validate-requirements.txt, pinned,
 * from PyPI) in their own virtualenv under the install cache, keyed by that file's hash and built
 * once, like the other tools the tests install (test/support/schemathesis.ts).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { cached, runLogged } from '../../shared/install-cache.ts';

export interface DeployValidators {
  readonly kubernetesValidate: string;
  readonly checkJsonschema: string;
  readonly hadolint: string;
  readonly shellcheck: string;
}

export async function deployValidators(config: DiamondConfig): Promise<DeployValidators> {
  const requirements = join(config.projectRoot, 'infra', 'deploy', 'validate-requirements.txt');
  const hash = createHash('sha256').update(readFileSync(requirements)).digest('hex').slice(0, 12);
  const dir = join(config.cacheDir, `deploy-validators-${hash}`);
  const ctx = { config, logFile: join(config.home, 'logs', 'deploy-validators-install.log') };
  await cached(dir, async (target) => {
    await runLogged('deploy-validators', 'python3', ['-m', 'venv', target], ctx);
    await runLogged('deploy-validators', join(target, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', '-r', requirements], ctx);
  });
  const bin = join(dir, 'bin');
  return { kubernetesValidate: join(bin, 'kubernetes-validate'), checkJsonschema: join(bin, 'check-jsonschema'), hadolint: join(bin, 'hadolint'), shellcheck: join(bin, 'shellcheck') };
}

export interface ToolRun {
  readonly code: number;
  readonly output: string;
}

/** Runs a validator to its end; its exit code says whether the files passed. */
export function runTool(binary: string, args: readonly string[]): Promise<ToolRun> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: 120_000, maxBuffer: 16 * 2 ** 20, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}
