/** Runs a use case job with spark-submit exactly as the orchestrator will, for tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { ensureTopics } from '../../shared/kafka.ts';
import { sparkSubmit } from '../../shared/runtime-paths.ts';
import { config, uniqueName } from './env.ts';

export interface JobTopics {
  readonly input: string;
  readonly output: string;
  readonly rejected: string;
  readonly progress: string;
  readonly recordsSubject: string;
  readonly feedbackSubject: string;
}

/** Unique topics and subjects for one job under test: input and output with 2 partitions. */
export async function createJobTopics(kafka: Kafka, prefix: string): Promise<JobTopics> {
  const topics: JobTopics = {
    input: uniqueName(`${prefix}-records`), output: uniqueName(`${prefix}-feedback`), rejected: uniqueName(`${prefix}-rejected`),
    progress: uniqueName(`${prefix}-progress`), recordsSubject: uniqueName(`${prefix}-records-value`), feedbackSubject: uniqueName(`${prefix}-feedback-value`),
  };
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [
    { topic: topics.input, partitions: 2 }, { topic: topics.output, partitions: 2 },
    { topic: topics.rejected, partitions: 1 }, { topic: topics.progress, partitions: 1 },
  ]);
  await admin.disconnect();
  return topics;
}

export interface RunningJob {
  readonly child: ChildProcess;
  readonly logFile: string;
  /** The Python driver's pid (what a supervisor signals for a graceful stop). */
  driverPid(): Promise<number>;
  exited: Promise<number | null>;
  log(): string;
}

export function startUsecaseJob(folder: string, variant: string, topics: JobTopics, extra: string[] = []): RunningJob {
  const work = mkdtempSync(join(tmpdir(), 'diamond-job-'));
  const pidFile = join(work, 'driver.pid');
  const logFile = join(work, 'job.log');
  const script = join(config.projectRoot, 'usecases', 'sdk', 'launch_job.py');
  const submit = sparkSubmit(config, script, [
    '--usecase-dir', folder, '--variant', variant,
    '--brokers', config.kafka.brokers.join(','), '--registry-url', config.registry.url,
    '--starting-offsets', 'earliest', '--trigger', '500ms',
    '--input-topic', topics.input, '--output-topic', topics.output, '--rejected-topic', topics.rejected, '--progress-topic', topics.progress,
    '--records-subject', topics.recordsSubject, '--feedback-subject', topics.feedbackSubject,
    '--checkpoint-root', join(work, 'checkpoints'), '--pid-file', pidFile,
    ...extra,
  ]);
  const child = spawn(submit.command, submit.args, { env: submit.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(logFile);
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    logFile,
    exited,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    driverPid: async () => {
      for (let i = 0; i < 600 && !existsSync(pidFile); i++) await sleep(100);
      return Number(readFileSync(pidFile, 'utf8'));
    },
  };
}
