/**
 * `diamond history [--port 18080] [--json]`: Spark's History Server over the event logs every
 * driver writes (DIAMOND_SPARK_EVENT_LOG_DIR): jobs, spares, function sessions and the
 * archiver, finished or running. It runs in the foreground from the installed pyspark
 * (`spark-class …HistoryServer`; the wheel has no start scripts), bound to 127.0.0.1, prints
 * its URL once it answers, and stops with Ctrl-C (SIGINT/SIGTERM are passed on).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { pythonEnvironment } from '../../shared/runtime-paths.ts';
import { jsonOption, printLine } from './output.ts';

const READY_TIMEOUT_MS = 90_000;

export const historyCommand: CommandModule<object, { port: number; json: boolean }> = {
  command: 'history',
  describe: "serve Spark's History Server over every driver's event log (jobs, sessions, finished or running) until Ctrl-C",
  builder: (y) => y
    .option('port', { type: 'number', default: 18080, describe: 'port on 127.0.0.1' })
    .option('json', { ...jsonOption, describe: 'print {"url", "eventLogDir"} as one JSON line once it serves' })
    .example('$0 history', 'then open http://127.0.0.1:18080'),
  handler: async ({ port, json }) => {
    const config = loadConfig(process.env);
    const logs = config.spark.eventLogDir;
    if (logs === null) throw new DiamondError('event logs are off (DIAMOND_SPARK_EVENT_LOG_DIR is empty): there is nothing to show', { code: 'DIAMOND_BAD_ARGUMENT', hint: 'set DIAMOND_SPARK_EVENT_LOG_DIR (default <home>/spark-events) and redeploy the jobs' });
    // SPARK_HOME is the pyspark package: its bin/ and jars/ are Spark's.
    const venvLib = join(pythonEnvironment(config).root, 'lib');
    const python = existsSync(venvLib) ? readdirSync(venvLib).find((name) => name.startsWith('python')) : undefined;
    const sparkHome = join(venvLib, python ?? 'python3', 'site-packages', 'pyspark');
    const sparkClass = join(sparkHome, 'bin', 'spark-class');
    if (!existsSync(sparkClass)) throw new DiamondError(`${sparkClass} is missing`, { code: 'DIAMOND_SERVICE_START_FAILED', hint: 'install Spark with `npx diamond services up`' });
    const options = [
      `-Dspark.history.fs.logDirectory=file://${logs}`,
      `-Dspark.history.ui.port=${port}`,
      // A long streaming job's rolled files are compacted; week-old applications are dropped.
      '-Dspark.history.fs.eventLog.rolling.maxFilesToRetain=2',
      '-Dspark.history.fs.cleaner.enabled=true',
      '-Dspark.history.fs.cleaner.maxAge=7d',
      '-Dspark.history.fs.update.interval=2s',
    ].join(' ');
    const child = spawn(sparkClass, ['org.apache.spark.deploy.history.HistoryServer'], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', JAVA_HOME: config.javaHome, SPARK_HOME: sparkHome, SPARK_HISTORY_OPTS: options, SPARK_LOCAL_IP: '127.0.0.1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => child.kill('SIGTERM'));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    while (!ready && Date.now() < deadline && child.exitCode === null) {
      ready = await fetch(`${url}/api/v1/applications`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      if (!ready) await sleep(300);
    }
    if (!ready) {
      child.kill('SIGKILL');
      const why = child.exitCode === null ? `did not serve ${url} within ${READY_TIMEOUT_MS / 1000} s` : `exited ${child.exitCode}`;
      throw new DiamondError(`Spark's History Server ${why}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`, {
        code: 'DIAMOND_SERVICE_START_FAILED', hint: `is port ${port} taken? try --port 18081`,
      });
    }
    printLine(json, { url, eventLogDir: logs }, `Spark History Server at ${url} (event logs in ${logs}); Ctrl-C stops it`);
    const code = await exited;
    process.exitCode = code === 0 || code === 143 || code === null ? 0 : 1;
  },
};
