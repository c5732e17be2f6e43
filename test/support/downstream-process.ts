/** Runs `downstream/main.ts` as a child process (so a test can kill -9 it) and waits until it is ready. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { config } from './env.ts';

export interface DownstreamProcess {
  readonly child: ChildProcess;
  readonly url: string | null;
  /** stderr so far (pino logs), for failure messages. */
  logs(): string;
}

export async function startDownstreamProcess(args: readonly string[], timeoutMs = 60_000): Promise<DownstreamProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(config.projectRoot, 'downstream', 'main.ts'), ...args], {
    cwd: config.projectRoot,
    env: { ...process.env, DIAMOND_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  const url = await new Promise<string | null>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`downstream not ready in ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.includes('"ready":true'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string | null }).url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`downstream exited with ${code} before it was ready:\n${stderr}`));
    });
  });
  return { child, url, logs: () => stderr };
}

export function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
