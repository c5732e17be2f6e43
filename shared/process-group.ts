/**
 * Background processes in their own process groups (the local services, the platform's
 * servers, the orchestrator's jobs): each with its output in a log file and its pid in a
 * pid file. `stopProcess` stops exactly the
 * process recorded there (and its group), never anything found by name.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PidRecord {
  readonly pid: number;
  readonly startedAt: string;
  /** A string the process's command line must contain; guards against a reused pid. */
  readonly marker: string;
}

export interface StartSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly logFile: string;
  readonly pidFile: string;
  readonly marker: string;
  readonly user?: { readonly uid: number; readonly gid: number };
}

export function startDetached(spec: StartSpec): PidRecord {
  mkdirSync(dirname(spec.logFile), { recursive: true });
  mkdirSync(dirname(spec.pidFile), { recursive: true });
  const out = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true, // own process group: a stop signal reaches its children, and ours never reaches it
      ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
      stdio: ['ignore', out, out],
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${spec.command}`);
    child.unref();
    const record: PidRecord = { pid: child.pid, startedAt: new Date().toISOString(), marker: spec.marker };
    writeFileSync(spec.pidFile, JSON.stringify(record) + '\n');
    return record;
  } finally {
    closeSync(out);
  }
}

export function readPidRecord(pidFile: string): PidRecord | null {
  if (!existsSync(pidFile)) return null;
  try {
    const parsed = JSON.parse(readFileSync(pidFile, 'utf8')) as Partial<PidRecord>;
    if (typeof parsed.pid !== 'number' || typeof parsed.marker !== 'string') return null;
    return { pid: parsed.pid, startedAt: String(parsed.startedAt ?? ''), marker: parsed.marker };
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped) still answers signal 0 but is not running.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return true;
  }
}

/** The recorded process, if it is alive and still the one we started. */
export function runningProcess(pidFile: string): PidRecord | null {
  const record = readPidRecord(pidFile);
  if (!record || !isAlive(record.pid)) return null;
  try {
    const cmdline = readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    if (!cmdline.includes(record.marker)) return null;
  } catch {
    // no /proc (not Linux): trust the pid file
  }
  return record;
}

/** SIGTERM to the process group, then SIGKILL after `graceMs`. Removes the pid file. */
export async function stopProcess(pidFile: string, graceMs = 20_000): Promise<{ stopped: boolean; pid: number | null; forced: boolean }> {
  const record = runningProcess(pidFile);
  if (!record) {
    rmSync(pidFile, { force: true });
    return { stopped: false, pid: null, forced: false };
  }
  signalGroup(record.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && isAlive(record.pid)) await sleep(200);
  const forced = isAlive(record.pid);
  if (forced) {
    signalGroup(record.pid, 'SIGKILL');
    while (isAlive(record.pid)) await sleep(100);
  }
  rmSync(pidFile, { force: true });
  return { stopped: true, pid: record.pid, forced };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Last lines of a log file, for error messages. */
export function tailFile(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
}

/** A live process found under /proc, with its process group and command line. */
export interface ProcessInfo {
  readonly pid: number;
  readonly pgid: number;
  readonly cmdline: string;
}

/**
 * Every live (non-zombie) process whose command line matches `pattern`, found by scanning
 * /proc. Empty where there is no /proc. Processes that vanish mid-scan are skipped.
 */
/** `text` as a literal inside a RegExp (a folder or marker path in a findProcesses pattern). */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function findProcesses(pattern: RegExp): ProcessInfo[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const found: ProcessInfo[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (!pattern.test(cmdline)) continue;
      const stat = statFields(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (!stat || stat.state === 'Z') continue;
      found.push({ pid: Number(entry), pgid: stat.pgid, cmdline });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** Live members of process group `pgid` (the leader may be gone while its children live on). */
export function groupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return isAlive(pgid) ? [pgid] : [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = statFields(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (stat && stat.pgid === pgid && stat.state !== 'Z') members.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

/** State and process group from /proc/<pid>/stat (the command name may hold spaces and parentheses). */
function statFields(stat: string): { state: string; pgid: number } | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgid = Number(fields[2]);
  return fields[0] && Number.isInteger(pgid) ? { state: fields[0], pgid } : null;
}

/** Our own process group: never signalled, whatever a scan found. */
function ownGroup(): number {
  try {
    return statFields(readFileSync('/proc/self/stat', 'utf8'))?.pgid ?? process.pid;
  } catch {
    return process.pid;
  }
}

/** Sends `signal` to each process group and each pid (skipping our own group); gone ones are ignored. */
export function signalAll(groups: Iterable<number>, pids: Iterable<number>, signal: NodeJS.Signals): void {
  const own = ownGroup();
  for (const pgid of new Set(groups)) {
    if (pgid <= 1 || pgid === own) continue;
    try {
      process.kill(-pgid, signal);
    } catch {
      // the group is empty already
    }
  }
  for (const pid of new Set(pids)) {
    if (pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
