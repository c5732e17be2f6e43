/**
 * Validation before anything starts: the manifest is valid, the variant exists and the
 * job's code imports, in the platform's Python. A refusal is a DiamondError saying what to fix.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseMemoryMb, type DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { pythonEnvironment } from '../services/artifacts.ts';
import { pythonProcessEnv } from '../services/spark.ts';
import type { DeclaredResources } from './state.ts';
import { codeVersion } from './version.ts';

const execFileAsync = promisify(execFile);

/** Loads the manifest, checks the variant, and imports the job's code, in the platform's Python. */
const VALIDATE = `
import json, sys
from diamond_sdk.manifest import ManifestError, load_manifest
from diamond_sdk.usercode import UserCodeError, load_user_job
try:
    manifest = load_manifest(sys.argv[1])
    job = load_user_job(manifest.name, sys.argv[2], manifest.variant_file(sys.argv[2]))
except (ManifestError, UserCodeError) as error:
    print(json.dumps({"ok": False, "error": str(error)}))
    sys.exit(0)
print(json.dumps({"ok": True, "name": manifest.name, "variants": sorted(manifest.variants), "kind": job.kind, "stateful": manifest.stateful,
                  "cores": manifest.resources.cores, "memory": manifest.resources.memory}))
`;

export interface ValidatedUsecase {
  readonly name: string;
  readonly variants: readonly string[];
  readonly version: string;
  readonly stateful: boolean;
  readonly resources: DeclaredResources;
  /** The use case's own Python environment; null = the platform's. */
  readonly pythonEnv: string | null;
}

/** Refuses (DiamondError saying what to fix) unless the manifest is valid and the code imports. */
export async function validateUsecase(config: DiamondConfig, folder: string, variant: string): Promise<ValidatedUsecase> {
  if (!existsSync(join(folder, 'usecase.yaml'))) {
    throw new DiamondError(`${folder} has no usecase.yaml`, { code: 'DIAMOND_USECASE_UNKNOWN', hint: 'deploy a use case folder (create one with `npx diamond usecase new <name>`)' });
  }
  const { python } = pythonEnvironment(config);
  const { stdout } = await execFileAsync(python, ['-c', VALIDATE, folder, variant], { env: pythonProcessEnv(config), cwd: config.projectRoot, timeout: 60_000 }).catch((cause: unknown) => {
    throw new DiamondError(`could not validate ${folder}`, { code: 'DIAMOND_USECASE_INVALID', hint: 'check that the Python environment is installed (`npx diamond services up spark`)', cause });
  });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { ok: boolean; error?: string; name?: string; variants?: string[]; stateful?: boolean; cores?: number; memory?: string };
  if (!result.ok) throw new DiamondError(`refused to deploy: ${result.error ?? 'invalid use case'}`, { code: 'DIAMOND_USECASE_INVALID', hint: 'fix the use case, check it with `npx diamond usecase test <name>`, then deploy again' });
  return {
    name: result.name ?? '', variants: result.variants ?? [], version: codeVersion(folder), stateful: result.stateful === true,
    resources: { cores: result.cores ?? 1, memoryMb: parseMemoryMb('resources.memory', result.memory ?? '1g') },
    pythonEnv: null,
  };
}
