/**
 * Things built once per user under `config.cacheDir` (jars, distributions, virtualenvs):
 * one folder per name and version, built in place under a lock, with a completion marker
 * written last, so an interrupted build is never mistaken for a finished one and a second
 * run reuses it in milliseconds. Used by the local services' installers and by the
 * orchestrator's per-use-case environments.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiamondConfig } from './config.ts';
import { ServiceStartError } from './errors.ts';
import { isAlive, tailFile } from './process-group.ts';

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

/** `as`: run the command as this (unprivileged) user instead of ours. */
/** Arguments as an error may show them: the value after a credential flag (`--add-scram` holds a password) is masked. */
function shownArgs(args: readonly string[]): string[] {
  return args.map((arg, i) => (i > 0 && args[i - 1] === '--add-scram' ? '[redacted]' : arg));
}

export async function runLogged(service: string, command: string, args: readonly string[], ctx: InstallContext, env?: NodeJS.ProcessEnv, as?: { readonly uid: number; readonly gid: number } | null): Promise<void> {
  mkdirSync(dirname(ctx.logFile), { recursive: true });
  const out = openSync(ctx.logFile, 'a');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(command, [...args], { stdio: ['ignore', out, out], env: env ?? process.env, ...(as ? { uid: as.uid, gid: as.gid } : {}) });
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) {
      throw new ServiceStartError(service, `\`${command} ${shownArgs(args).join(' ')}\` exited with ${code}`, {
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
