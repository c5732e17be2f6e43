/**
 * Who tenant code runs as. When the platform runs as root, use case code (pip installs of its
 * requirements, validation's import and sample run, the jobs) runs as the unprivileged
 * DIAMOND_JOB_USER: it reads what it needs (the platform's virtualenv and jars under the
 * cache, the use case folder, the SDK), writes only its own folders (job folder, checkpoints,
 * a private HOME), and cannot read the platform's secrets (token files, local.json, the Redis
 * password and data), which stay root's and 0600/0700. Not root: null, nothing changes (tenant
 * code runs as the platform's user, as before).
 *
 * Every job runs as the same user, so jobs are not isolated from one another by the kernel
 * (one could signal or ptrace another); what keeps a job from forging another's progress is the
 * per-launch key, which the runner reads and deletes before any use case code runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';

export interface JobUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const known = new Map<string, JobUser>();

/** The user tenant code runs as; null when the platform is not root. Throws when the user is missing. */
export function jobUser(config: Pick<DiamondConfig, 'usecases'>): JobUser | null {
  if (process.getuid?.() !== 0) return null;
  const name = config.usecases.jobUser;
  const cached = known.get(name);
  if (cached) return cached;
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    throw new DiamondError(`the platform runs as root and the job user '${name}' (DIAMOND_JOB_USER) does not exist`, {
      code: 'DIAMOND_JOB_USER_MISSING',
      hint: `create it once: sudo bash infra/setup/system-packages.sh (or useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${name}), or name another unprivileged user in DIAMOND_JOB_USER`,
    });
  }
  if (!Number.isInteger(uid) || uid === 0 || !Number.isInteger(gid)) {
    throw new DiamondError(`the job user '${name}' is root or unreadable (uid ${uid})`, { code: 'DIAMOND_JOB_USER_MISSING', hint: 'name an unprivileged user in DIAMOND_JOB_USER' });
  }
  const user = { name, uid, gid };
  known.set(name, user);
  return user;
}

/** `dir` (created if missing) owned by the job user, 0700; `recursive` also hands over what is in it. */
export function ownDir(dir: string, user: JobUser, options: { readonly recursive?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  const stat = statSync(dir);
  if (stat.uid !== user.uid && options.recursive) chownTree(dir, user, user.uid);
  else chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
}

/** Every file and folder under `dir` to `uid` (the job user's, or back to root's with uid 0). */
export function chownTree(dir: string, user: JobUser, uid: number): void {
  const gid = uid === 0 ? 0 : user.gid;
  const walk = (path: string): void => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) {
      lchownSync(path, uid, gid); // the link itself, never what it points to
      return;
    }
    chownSync(path, uid, gid);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
  };
  walk(dir);
}

/**
 * Lets the job user through every folder above `dir` (o+x: cross, never read or list). A
 * user's home folder on the way (root's is 0700) is opened the same way rather than refusing
 * to run: its entries keep their own modes (~/.ssh stays 0700), but any world-readable file in
 * it whose name is known becomes readable, so the home folders opened are returned for the
 * caller to warn about; keeping the checkout outside them avoids it.
 */
export function openPathTo(dir: string, user: JobUser): string[] {
  const homes = new Set([homedir(), '/root']);
  const opened: string[] = [];
  const ancestors: string[] = [];
  for (let at = dirname(dir); ; at = dirname(at)) {
    ancestors.push(at);
    if (dirname(at) === at) break;
  }
  for (const folder of ancestors) {
    const stat = statSync(folder);
    if ((stat.mode & 0o001) !== 0 || (stat.uid === user.uid && (stat.mode & 0o100) !== 0)) continue;
    if (homes.has(folder)) opened.push(folder);
    chmodSync(folder, (stat.mode & 0o7777) | 0o001);
  }
  return opened;
}

/**
 * Closes the platform's home to the job user except the way to its job folders: the home (and
 * the folders on the way) 0711, so they can be crossed but not listed; every other entry of
 * them loses its group and other bits (local.json, the Redis password and data, logs, pid and
 * supervisor files). Run before each launch and validation: entries made since are closed too.
 */
export function restrictPlatformHome(home: string, tenantDirs: readonly string[]): void {
  if (!existsSync(home)) mkdirSync(home, { recursive: true });
  const onTheWay = new Set<string>([home]);
  for (const dir of tenantDirs) {
    const rel = relative(home, dir);
    if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) continue;
    let at = home;
    for (const part of rel.split(sep)) {
      at = join(at, part);
      onTheWay.add(at);
    }
  }
  for (const folder of onTheWay) {
    if (!existsSync(folder)) continue;
    // A sticky folder is a shared drop box (the Spark event logs, 1777): it stays one.
    if ((lstatSync(folder).mode & 0o1000) !== 0) continue;
    chmodSync(folder, 0o711);
    if (tenantDirs.includes(folder)) continue; // its entries are the jobs' own folders
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry);
      if (onTheWay.has(path)) continue;
      const stat = lstatSync(path);
      if (stat.isSymbolicLink() || (stat.mode & 0o077) === 0) continue;
      chmodSync(path, stat.mode & 0o7700);
    }
  }
}

/** Where a local standalone worker (run as the job user: its executors run use case code) keeps its executors' folders. */
export function sparkWorkerDir(config: Pick<DiamondConfig, 'home'>, worker: string): string {
  return join(config.home, 'spark-workers', worker);
}

/** The orchestrator's default job, checkpoint, function session and history archiver folders, the default history and the local Spark workers' folders: kept open to the job user whoever restricts the home. */
export function defaultTenantDirs(config: Pick<DiamondConfig, 'home' | 'spark'>): string[] {
  return [
    join(config.home, 'orchestrator', 'jobs'), join(config.home, 'orchestrator', 'checkpoints'), join(config.home, 'orchestrator', 'functions'),
    join(config.home, 'orchestrator', 'history'), join(config.home, 'history'), join(config.home, 'spark-workers'),
    ...(config.spark.eventLogDir ? [config.spark.eventLogDir] : []),
  ];
}

/** Throws DIAMOND_JOB_USER_NO_ACCESS naming the first of `paths` the job user cannot read. */
export function assertJobUserCanRead(user: JobUser, paths: readonly string[]): void {
  const check = spawnSync('/bin/sh', ['-c', 'for p; do [ -r "$p" ] || { printf %s "$p"; exit 1; }; done', 'sh', ...paths], {
    uid: user.uid, gid: user.gid, env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8', timeout: 10_000,
  });
  if (check.status === 0) return;
  const path = check.stdout || paths.join(', ');
  throw new DiamondError(`the job user '${user.name}' cannot read ${path}`, {
    code: 'DIAMOND_JOB_USER_NO_ACCESS',
    hint: `tenant code runs as ${user.name} when the platform is root: keep the checkout and DIAMOND_CACHE_DIR (default /var/cache/diamond as root) in folders it can cross, e.g. not under /root`,
  });
}
