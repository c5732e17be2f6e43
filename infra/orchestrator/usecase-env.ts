/**
 * A use case's own Python environment. When its folder has a requirements.txt with at least
 * one requirement, a virtualenv is built for it at deploy time, layered on the platform's: a
 * `.pth` file puts the platform's site-packages after the use case's own, so PySpark,
 * fastavro, pandas … are shared instead of reinstalled and pip only installs what the
 * platform lacks. It lives under `<cacheDir>/usecase-envs/<hash>` (hash of the normalized
 * requirements, the platform's Python version and the platform's environment), built once
 * under a lock with a completion marker (artifacts.ts `cached`), so later launches are instant
 * and use cases with the same requirements share one environment.
 *
 * A cluster's executors cannot see this machine's folders: for a non-local master the use
 * case's own packages are also zipped and shipped with `--archives <zip>#<alias>`, with the
 * alias on the executors' PYTHONPATH.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { cached, isBuilt, runLogged, type InstallContext } from '../../shared/install-cache.ts';
import { pythonEnvironment, pythonRequirementsFile, type SparkSubmitExtras } from '../../shared/runtime-paths.ts';
import { tenantEnv, withPrivateHome } from '../../shared/tenant-env.ts';
import { chownTree, jobUser, ownDir, type JobUser } from './job-user.ts';
import { assertPlainRequirements } from './requirements-policy.ts';

const execFileAsync = promisify(execFile);

/** Where an archive of the use case's packages is unpacked in each executor's working directory. */
export const ARCHIVE_ALIAS = 'usecase_packages';
const ARCHIVE_FILE = 'usecase-packages.zip';
const PLATFORM_PTH = '_diamond_platform.pth';

export interface UsecaseEnv {
  /** The environment's interpreter (PYSPARK_PYTHON of the job). */
  readonly python: string;
  readonly dir: string;
  readonly hash: string;
  /** The use case's own packages, zipped for `--archives` (cluster masters only). */
  readonly archive?: string;
}

/**
 * The requirement lines that matter: continuation lines joined, comments (`#` at the start
 * or after whitespace, as pip reads them) and blank lines dropped, whitespace collapsed.
 * Order is kept: pip options such as `--index-url` apply in order.
 */
export function normalizeRequirements(text: string): string[] {
  return text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim().replace(/\s+/g, ' '))
    .filter((line) => line !== '');
}

/** The normalized requirements of a use case folder; empty without a requirements.txt. */
export function readRequirements(folder: string): string[] {
  const file = join(folder, 'requirements.txt');
  return existsSync(file) ? normalizeRequirements(readFileSync(file, 'utf8')) : [];
}

/** The key of an environment: same requirements on the same platform → same environment. */
export function usecaseEnvHash(requirements: readonly string[], pythonVersion: string, platformEnv: string): string {
  return createHash('sha256').update(JSON.stringify({ requirements, python: pythonVersion, platform: platformEnv })).digest('hex').slice(0, 16);
}

/** The platform virtualenv's Python version, from its pyvenv.cfg (no process started). */
export function platformPythonVersion(config: DiamondConfig): string {
  const cfg = join(pythonEnvironment(config).root, 'pyvenv.cfg');
  if (!existsSync(cfg)) {
    throw new DiamondError(`the platform's Python environment is not installed (${cfg} is missing)`, { code: 'DIAMOND_PYTHON_MISSING', hint: 'run `npx diamond services up spark` once' });
  }
  const version = /^\s*version(?:_info)?\s*=\s*(\S+)/m.exec(readFileSync(cfg, 'utf8'))?.[1];
  if (!version) throw new DiamondError(`${cfg} names no Python version`, { code: 'DIAMOND_PYTHON_MISSING', hint: `remove ${pythonEnvironment(config).root} and run \`npx diamond services up spark\`` });
  return version;
}

export function isClusterMaster(master: string): boolean {
  return !/^local(\[|$)/.test(master);
}

/** Where a use case's environment lives (built or not); null when it needs none. */
export function usecaseEnvLocation(config: DiamondConfig, folder: string): { hash: string; dir: string; requirements: string[] } | null {
  const requirements = readRequirements(folder);
  if (requirements.length === 0) return null;
  const hash = usecaseEnvHash(requirements, platformPythonVersion(config), basename(pythonEnvironment(config).root));
  return { hash, dir: join(config.cacheDir, 'usecase-envs', hash), requirements };
}

/** The environment at `dir` as a job uses it (whether or not it is still there). */
export function usecaseEnvAt(config: DiamondConfig, dir: string): UsecaseEnv {
  const archive = isClusterMaster(config.spark.master) ? join(dir, ARCHIVE_FILE) : undefined;
  return { python: join(dir, 'bin', 'python'), dir, hash: basename(dir), ...(archive ? { archive } : {}) };
}

/** Built, and packed when the master needs the archive. */
export function isUsecaseEnvReady(env: UsecaseEnv): boolean {
  return isBuilt(env.dir) && existsSync(env.python) && (env.archive === undefined || existsSync(env.archive));
}

/** sparkSubmit's extras and `--conf` settings of one job. */
export interface UsecaseSparkSettings extends SparkSubmitExtras {
  readonly env: Readonly<Record<string, string>>;
  readonly archives: readonly string[];
  readonly conf: Readonly<Record<string, string>>;
}

/**
 * What a job running in `env` adds to spark-submit. Local master: driver and workers run the
 * environment's interpreter. Cluster master: the driver (client mode, this machine) runs it;
 * executors keep the platform's interpreter and import the use case's packages from the archive.
 */
export function usecaseSparkSettings(env: UsecaseEnv, master: string): UsecaseSparkSettings {
  if (!isClusterMaster(master)) return { env: { PYSPARK_PYTHON: env.python, PYSPARK_DRIVER_PYTHON: env.python }, archives: [], conf: {} };
  if (!env.archive) throw new DiamondError(`the Python environment ${env.dir} has no archive for the cluster master ${master}`, { code: 'DIAMOND_USECASE_ENV_FAILED', hint: 'deploy the use case again (it packs the archive)' });
  return {
    env: { PYSPARK_DRIVER_PYTHON: env.python },
    archives: [`${env.archive}#${ARCHIVE_ALIAS}`],
    conf: { 'spark.executorEnv.PYTHONPATH': ARCHIVE_ALIAS },
  };
}

/**
 * Builds (once) the environment a use case folder needs, or returns null when it has no
 * requirements. A DiamondError names the use case, the failing requirement when pip says
 * which, and pip's log.
 */
export async function prepareUsecaseEnv(config: DiamondConfig, folder: string, onStep?: (message: string) => void): Promise<UsecaseEnv | null> {
  const location = usecaseEnvLocation(config, folder);
  if (!location) return null;
  const usecase = basename(folder);
  assertPlainRequirements(usecase, location.requirements, config.usecases.allowPipOptions);
  const env = usecaseEnvAt(config, location.dir);
  const ctx: InstallContext = { config, logFile: `${location.dir}.log`, onStep };
  const user = jobUser(config);
  try {
    await cached(location.dir, async (dir) => {
      rmSync(ctx.logFile, { force: true }); // the log tells about the last attempt only
      onStep?.(`building the Python environment of ${usecase} (${location.requirements.join(', ')})`);
      // pip runs the packages' build scripts: in a child with a clean environment and an empty
      // home, as the job user when we are root; the finished environment is root's (read-only
      // to jobs), since use cases with the same requirements share it.
      if (user) ownDir(dir, user);
      try {
        await withPrivateHome((home) => buildEnv(config, usecase, dir, location.requirements, ctx, tenantEnv({ HOME: home }, { pip: true }), user), user);
      } finally {
        if (user) {
          chownTree(dir, user, 0);
          chmodSync(dir, 0o755);
        }
      }
    });
    if (env.archive && !existsSync(env.archive)) await packArchive(config, env, ctx);
  } catch (error) {
    throw installError(usecase, location.requirements, ctx.logFile, error);
  }
  return env;
}

async function buildEnv(config: DiamondConfig, usecase: string, dir: string, requirements: readonly string[], ctx: InstallContext, env: NodeJS.ProcessEnv, user: JobUser | null): Promise<void> {
  const platform = pythonEnvironment(config).python;
  const python = join(dir, 'bin', 'python');
  // No pip of its own: the platform's pip installs into it (`pip --python`), which saves
  // seconds per environment.
  await runLogged('usecase-env', platform, ['-m', 'venv', '--without-pip', dir], ctx, env, user);
  const [own] = await sitePackages(python, env, user);
  const platformSites = await sitePackages(platform, env, user);
  writeFileSync(join(own!, PLATFORM_PTH), platformSites.join('\n') + '\n');
  const file = join(dir, 'requirements.txt');
  writeFileSync(file, requirements.join('\n') + '\n');
  await runLogged('usecase-env', platform, ['-m', 'pip', '--python', python, 'install', '--disable-pip-version-check', '--no-input', '-r', file], ctx, env, user);
  await checkPlatformPins(config, usecase, python, env, user);
}

/** purelib and platlib of an interpreter (one entry when they are the same folder). */
export async function sitePackages(python: string, env: NodeJS.ProcessEnv = tenantEnv({}), user: JobUser | null = null): Promise<string[]> {
  const { stdout } = await execFileAsync(python, ['-c', 'import json, sysconfig; print(json.dumps([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]))'], { timeout: 30_000, env, ...asUser(user) });
  return [...new Set(JSON.parse(stdout) as string[])];
}

/** child_process options that run a command as the job user (none when we are not root). */
export function asUser(user: JobUser | null): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

/** The platform's `name==version` pins. */
export function platformPins(requirementsText: string): Map<string, string> {
  const pins = new Map<string, string>();
  for (const line of normalizeRequirements(requirementsText)) {
    const match = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)/.exec(line);
    if (match) pins.set(match[1]!, match[2]!);
  }
  return pins;
}

/**
 * A use case may add packages, not replace the platform's: another pyspark would not match
 * the connector jars, another pandas or numpy would break the SDK. Checked after pip ran.
 */
async function checkPlatformPins(config: DiamondConfig, usecase: string, python: string, env: NodeJS.ProcessEnv, user: JobUser | null): Promise<void> {
  const pins = platformPins(readFileSync(pythonRequirementsFile(config), 'utf8'));
  const script = 'import importlib.metadata as m, json, sys\nprint(json.dumps({n: m.version(n) for n in sys.argv[1:]}))';
  const { stdout } = await execFileAsync(python, ['-c', script, ...pins.keys()], { timeout: 30_000, env, ...asUser(user) });
  const seen = JSON.parse(stdout) as Record<string, string>;
  for (const [name, version] of pins) {
    if (seen[name] !== version) {
      throw new DiamondError(`the requirements.txt of use case '${usecase}' replaces the platform's ${name} ${version} with ${seen[name] ?? 'nothing'}`, {
        code: 'DIAMOND_USECASE_ENV_FAILED',
        hint: `remove ${name} from usecases/${usecase}/requirements.txt (or pin it to ${version}): the platform's packages (usecases/sdk/requirements.txt) are shared by every job`,
      });
    }
  }
}

/** Zips the use case's own packages (not the platform's) for the executors. */
async function packArchive(config: DiamondConfig, env: UsecaseEnv, ctx: InstallContext): Promise<void> {
  const [own] = await sitePackages(env.python);
  ctx.onStep?.(`packing the packages of ${env.dir} for the cluster`);
  await packPackages(pythonEnvironment(config).python, own!, env.archive!, ctx);
}

/**
 * Zips the contents of a site-packages folder (package folders at the zip's root, as
 * PYTHONPATH=<alias> expects), without byte code or the link to the platform's packages.
 * Written aside and renamed: a concurrent packer writes the same content.
 */
export async function packPackages(python: string, sitePackagesDir: string, archive: string, ctx: InstallContext): Promise<void> {
  const tmp = `${archive}.${process.pid}.tmp`;
  const script = [
    'import os, sys, zipfile',
    'src, out, skip = sys.argv[1], sys.argv[2], sys.argv[3]',
    'with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:',
    '    for root, dirs, files in os.walk(src):',
    '        dirs[:] = sorted(d for d in dirs if d != "__pycache__")',
    '        for f in sorted(files):',
    '            if root == src and f == skip: continue',
    '            z.write(os.path.join(root, f), os.path.relpath(os.path.join(root, f), src))',
  ].join('\n');
  await runLogged('usecase-env', python, ['-c', script, sitePackagesDir, tmp, PLATFORM_PTH], ctx, tenantEnv({}));
  renameSync(tmp, archive);
}

/**
 * The requirement line pip failed on, from its log: it names the requirement as written
 * ("No matching distribution found for humanize==99"), so match by package name.
 */
export function failedRequirement(log: string, requirements: readonly string[]): string | null {
  const patterns = [
    /No matching distribution found for (\S+)/,
    /Could not find a version that satisfies the requirement ([^\s(]+)/,
    /Invalid requirement: '([^']+)'/,
    /The user requested ([^\s(]+)/,
    /Failed to build (\S+)/,
  ];
  for (const pattern of patterns) {
    const spec = pattern.exec(log)?.[1];
    if (!spec) continue;
    const name = packageName(spec);
    const line = requirements.find((r) => packageName(r) === name) ?? requirements.find((r) => r.includes(spec));
    if (line) return line;
  }
  return null;
}

function packageName(requirement: string): string {
  return (requirement.split(/[\s<>=!~;[@(]/)[0] ?? '').toLowerCase().replace(/[-_.]+/g, '-');
}

function installError(usecase: string, requirements: readonly string[], logFile: string, error: unknown): DiamondError {
  if (error instanceof DiamondError && error.code === 'DIAMOND_USECASE_ENV_FAILED') return error;
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  const line = failedRequirement(log, requirements);
  const what = line ? `requirement '${line}' cannot be installed` : 'pip failed';
  return new DiamondError(`could not build the Python environment of use case '${usecase}': ${what}`, {
    code: 'DIAMOND_USECASE_ENV_FAILED',
    hint: `fix usecases/${usecase}/requirements.txt (pinned versions that exist on the package index, pure Python preferred); pip's log: ${logFile}`,
    cause: error,
  });
}
