/**
 * The Python interpreter `diamond usecase env` hands to IDEs and notebooks: it imports the
 * SDK, the use case's own packages (its requirements.txt) and the platform's (PySpark, …),
 * and can run `run_usecase` as `diamond usecase test` does.
 *
 * It is a thin virtualenv per checkout and use case, `<DIAMOND_HOME>/python/<name>-<hash>`,
 * made with `venv --without-pip` (milliseconds) and one .pth file that puts, in this order,
 * this checkout's SDK, the use case's cached environment (usecase-env.ts; built here when
 * missing) and the platform's site-packages on sys.path, and sets JAVA_HOME,
 * DIAMOND_SPARK_JARS and PYSPARK_PYTHON unless already set (Spark's Python workers must
 * run this same interpreter). Not the cached environments themselves: they live in the
 * cache shared by every clone, and the SDK belongs to one checkout (it reads the contracts
 * from its shared/schemas).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { connectorJars, pythonEnvironment } from '../../shared/runtime-paths.ts';
import { tenantEnv } from '../../shared/tenant-env.ts';
import { prepareUsecaseEnv, readRequirements, sitePackages } from '../orchestrator/usecase-env.ts';

const execFileAsync = promisify(execFile);
const PTH = '_diamond_usecase.pth';

export interface UsecaseInterpreter {
  readonly usecase: string;
  readonly folder: string;
  /** The interpreter to give an IDE or a notebook. */
  readonly python: string;
  /** The thin virtualenv holding it. */
  readonly dir: string;
  /** The SDK folder on its path (usecases/sdk of this checkout). */
  readonly sdk: string;
  /** Site-packages on its path after the SDK, in order: the use case's own, then the platform's. */
  readonly sitePackages: readonly string[];
  /** The use case's cached environment; null when it has no requirements. */
  readonly usecaseEnv: string | null;
  readonly platformEnv: string;
  readonly requirements: readonly string[];
  /** Set by the interpreter at start unless already set. */
  readonly env: Readonly<Record<string, string>>;
}

/** Builds (when needed) and checks the interpreter of the use case in `folder`. */
export async function prepareUsecaseInterpreter(config: DiamondConfig, folder: string, onStep: (message: string) => void): Promise<UsecaseInterpreter> {
  const usecase = basename(folder);
  const platform = pythonEnvironment(config);
  const own = await prepareUsecaseEnv(config, folder, onStep);
  const dir = join(config.home, 'python', `${usecase}-${createHash('sha256').update(resolve(folder)).digest('hex').slice(0, 8)}`);
  const python = join(dir, 'bin', 'python');
  if (!existsSync(python)) {
    onStep(`creating the interpreter of ${usecase} in ${dir}`);
    await execFileAsync(platform.python, ['-m', 'venv', '--without-pip', dir], { timeout: 60_000, env: tenantEnv({}) });
  }
  const sdk = join(config.projectRoot, 'usecases', 'sdk');
  const usecaseSites = own ? await sitePackages(own.python) : [];
  const platformSites = await sitePackages(platform.python);
  const env = { JAVA_HOME: config.javaHome, DIAMOND_SPARK_JARS: connectorJars(config).join(','), PYSPARK_PYTHON: python };
  const [thinSite] = await sitePackages(python);
  // Rewritten every time (it is cheap): it follows a moved platform env or changed requirements.
  writeFileSync(join(thinSite!, PTH), pthFile(sdk, [...usecaseSites, ...platformSites], env));
  await checkImports(usecase, python);
  return { usecase, folder: resolve(folder), python, dir, sdk, sitePackages: [...usecaseSites, ...platformSites], usecaseEnv: own?.dir ?? null, platformEnv: platform.root, requirements: readRequirements(folder), env };
}

/** Path lines, then one `import` line (site.py executes those) setting the defaults. */
function pthFile(sdk: string, sites: readonly string[], env: Readonly<Record<string, string>>): string {
  // JSON strings are valid Python string literals.
  const defaults = Object.entries(env).map(([name, value]) => `os.environ.setdefault(${JSON.stringify(name)}, ${JSON.stringify(value)})`).join('; ');
  return [sdk, ...sites, `import os; ${defaults}`].join('\n') + '\n';
}

/** The interpreter, started as an IDE would (no PYTHONPATH), imports the SDK and PySpark. */
async function checkImports(usecase: string, python: string): Promise<void> {
  try {
    await execFileAsync(python, ['-c', 'import diamond_sdk, diamond_sdk.testing, pyspark'], { timeout: 60_000, env: tenantEnv({}) });
  } catch (cause) {
    throw new DiamondError(`the interpreter of use case '${usecase}' (${python}) cannot import the SDK`, {
      code: 'DIAMOND_USECASE_ENV_FAILED', hint: `remove ${python.replace(/\/bin\/python$/, '')} and run the command again`, cause,
    });
  }
}
