/** Runs Python from the platform's virtualenv with the SDK importable. */
import { spawn } from 'node:child_process';
import { pythonEnvironment, pythonProcessEnv } from '../../shared/runtime-paths.ts';
import { config } from './env.ts';

export interface PythonResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runPython(args: readonly string[], input = '', extraEnv: NodeJS.ProcessEnv = {}): Promise<PythonResult> {
  const { python } = pythonEnvironment(config);
  return new Promise((resolve, reject) => {
    const child = spawn(python, [...args], {
      cwd: config.projectRoot,
      env: { ...pythonProcessEnv(config), ...extraEnv },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}
