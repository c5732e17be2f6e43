/** A server whose port is taken says so in one line and exits non-zero (no 'error' event stack). */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { config } from '../support/env.ts';

test('diamond serve upstream on a busy port: one line naming the port, --port and DIAMOND_INGEST_PORT; exit 1', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, config.http.host, resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const { port } = taken.address() as { port: number };
  const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ['infra/cli/bin.js', 'serve', 'upstream', '--port', String(port), '--no-raw-topics'], {
      cwd: config.projectRoot, env: { ...process.env, DIAMOND_LOG_LEVEL: 'warn' }, timeout: 60_000,
    }, (error, _stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stderr }));
  });
  t.is(run.code, 1, run.stderr);
  t.is(run.stderr, `diamond: the ingest API cannot listen on ${config.http.host}:${port}: port ${port} is already in use; pass --port or set DIAMOND_INGEST_PORT\n`);
});
