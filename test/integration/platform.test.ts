/**
 * `diamond up` / `diamond down` on the real services, without Spark. The platform under
 * test is isolated from the checkout's own (which may be running):
 * - its own DIAMOND_HOME (pid files, logs, local.json, job folders): the services are
 *   healthy, so `servicesUp` reuses them and never starts anything in that home (checked
 *   first);
 * - its own Redis database (claimed, flushed at the end): orchestrator state, lease and
 *   tokens do not meet the real deployments;
 * - its own HTTP ports (28000–28999);
 * - upstream without the raw-topic normalizer and downstream with only its API, so the
 *   test joins none of the real consumer groups (it would steal their partitions).
 * The cold `up` runs in-process with those components; the warm `up` and `down` run the
 * CLI as a child process and must reuse and stop exactly what the cold one started.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { Redis } from 'ioredis';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { newProgressKey, signProgress } from '../../infra/orchestrator/progress-signature.ts';
import { checkKafka, ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { checkRedis, createRedis, redisPassword } from '../../shared/redis.ts';
import { readLocalPlatform } from '../../infra/platform/platform-file.ts';
import { writeLocalPlatformFile } from '../../infra/platform/admin-token.ts';
import { platformUp, stopComponent, type ComponentResult } from '../../infra/platform/local-platform.ts';
import { componentPaths, platformComponents, PLATFORM_COMPONENTS, type PlatformComponent } from '../../infra/platform/platform-components.ts';
import { stopSupervisor, supervisorPaths } from '../../infra/platform/platform-supervisor.ts';
import { stopJobs } from '../../infra/platform/job-shutdown.ts';
import { readJobOffsets } from '../../infra/orchestrator/offsets.ts';
import { defaultOrchestratorOptions, type OrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { jobIdFor, type JobProcess, type JobRecord } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { isAlive, startDetached } from '../../shared/process-group.ts';
import { servicesStatus, servicesUp } from '../../infra/services/local-services.ts';
import { config as sharedConfig, consumeUntil, testKafka, uniqueName } from '../support/env.ts';

const CLAIM_KEY = 'diamond:test:claim';

/** A Redis database nobody uses (empty), claimed atomically with SET NX. */
async function claimRedisDatabase(baseUrl: string): Promise<string> {
  const databases = Array.from({ length: 15 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
  for (const db of databases) {
    const url = new URL(baseUrl);
    url.pathname = `/${db}`;
    const redis = new Redis(url.toString(), { password: redisPassword(sharedConfig) });
    try {
      if ((await redis.dbsize()) === 0 && (await redis.set(CLAIM_KEY, 'platform.test.ts', 'NX')) === 'OK') return url.toString();
    } finally {
      redis.disconnect();
    }
  }
  throw new Error('no empty Redis database among 1–15 to isolate the test in');
}

async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function freePortTriple(): Promise<[number, number, number]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 28000 + Math.floor(Math.random() * 997);
    const ports: [number, number, number] = [base, base + 1, base + 2];
    if ((await Promise.all(ports.map(isPortFree))).every(Boolean)) return ports;
  }
  throw new Error('no three free ports in 28000–28999');
}

function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; seconds: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(sharedConfig.projectRoot, 'infra', 'cli', 'bin.js'), ...args], { env, cwd: sharedConfig.projectRoot, timeout: 180_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`diamond ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

async function httpStatus(url: string, token?: string): Promise<number> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5000) });
  await response.body?.cancel();
  return response.status;
}

/** A stand-in job: a process group whose "driver" exits 0 on SIGTERM, like the runner after its batch. */
async function startFakeJob(dir: string): Promise<JobProcess> {
  mkdirSync(dir, { recursive: true });
  const driverPidFile = join(dir, 'driver.pid');
  const exitFile = join(dir, 'exit');
  const logFile = join(dir, 'job.log');
  const group = startDetached({
    command: '/bin/sh', args: ['-c', `echo $$ > "$0"; trap 'echo 0 > "$1"; exit 0' TERM; while :; do sleep 0.1; done`, driverPidFile, exitFile],
    logFile, pidFile: join(dir, 'group.pid'), marker: driverPidFile,
  });
  while (!existsSync(driverPidFile) || readFileSync(driverPidFile, 'utf8').trim() === '') await sleep(50);
  return { groupPid: group.pid, marker: driverPidFile, driverPidFile, exitFile, logFile, version: 'fake1', startedAt: Date.now(), progressKey: newProgressKey() };
}

function runningRecord(jobId: string, usecase: string, generation: number, job: JobProcess): JobRecord {
  return {
    jobId, usecase, variant: 'A', state: 'running', generation, current: job, next: null, retiring: [],
    restarts: 0, crashes: [], nextStartAt: null, lastError: null, lastLogFile: job.logFile, updatedAt: Date.now(),
  };
}

interface Platform {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  readonly config: DiamondConfig;
  readonly components: PlatformComponent[];
  cold: ComponentResult[];
  fakeJob: JobProcess | null;
}

let platform: Platform | null = null;

test.before(async () => {
  const unhealthy = (await servicesStatus(sharedConfig)).filter((s) => !s.healthy);
  if (unhealthy.length > 0) throw new Error(`services down: ${unhealthy.map((s) => s.name).join(', ')}; run \`npx diamond services up\` first (the test must not start its own)`);
  const home = mkdtempSync(join(tmpdir(), 'diamond-platform-test-'));
  const [ingest, feedback, control] = await freePortTriple();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DIAMOND_HOME: home,
    DIAMOND_REDIS_URL: await claimRedisDatabase(sharedConfig.redis.url),
    DIAMOND_REDIS_PASSWORD_FILE: sharedConfig.redis.passwordFile, // the shared Redis's, not one in this home
    DIAMOND_INGEST_PORT: String(ingest), DIAMOND_FEEDBACK_PORT: String(feedback), DIAMOND_CONTROL_PORT: String(control),
    DIAMOND_TOKEN: '', DIAMOND_LOG_LEVEL: 'info',
    // Its own progress group: another test's orchestrator in the same group would make each
    // join a rebalance, and a stop during one waits out the rebalance.
    DIAMOND_ORCHESTRATOR_GROUP: uniqueName('pt-orchestrator-group'),
    // No history archiver: a Spark driver this test is not about (orchestrator-history tests it).
    DIAMOND_HISTORY_ARCHIVE: '0',
  };
  const config = loadConfig(env);
  const components = platformComponents(config).map((component) => ({
    ...component,
    args: component.name === 'upstream' ? [...component.args, '--no-raw-topics'] : component.name === 'downstream' ? [...component.args, '--parts', 'api'] : component.args,
  }));
  platform = { home, env, config, components, cold: [], fakeJob: null };
});

test.after.always(async () => {
  if (!platform) return;
  const { config, home, fakeJob } = platform;
  await stopSupervisor(config).catch(() => undefined); // first, or it restarts what is stopped below
  for (const name of PLATFORM_COMPONENTS) await stopComponent(config, name, platform.components).catch(() => undefined);
  if (fakeJob && isAlive(fakeJob.groupPid)) process.kill(-fakeJob.groupPid, 'SIGKILL');
  const redis = new Redis(config.redis.url, { password: redisPassword(config) });
  await redis.flushdb().finally(() => redis.disconnect()); // the claimed database, claim included
  if (!process.env["KEEP_TEST_HOME"]) rmSync(home, { recursive: true, force: true });
});

test.serial('cold up starts the orchestrator, upstream and downstream, waits for their health and writes a working admin token', async (t) => {
  const { config, env, components } = platform!;
  const log = createLogger({ logLevel: 'warn' }, { fd: 2, bindings: { test: 'platform' } });
  const started = performance.now();
  const services = await servicesUp(config, log);
  t.true(services.every((s) => s.outcome === 'reused' || s.outcome === 'external'), 'the services are reused, never started in the test home');
  const lines: string[] = [];
  platform!.cold = await platformUp(config, log, { env, components, onResult: (r) => lines.push(`${r.name} ${r.outcome} ${r.seconds} s pid ${r.pid}`) });
  const local = await writeLocalPlatformFile(config);
  t.log(`cold up: ${((performance.now() - started) / 1000).toFixed(1)} s (${lines.join('; ')})`);

  t.deepEqual(platform!.cold.map((r) => [r.name, r.outcome]), [['orchestrator', 'started'], ['upstream', 'started'], ['downstream', 'started']]);
  for (const result of platform!.cold) {
    t.is(await httpStatus(result.healthUrl), 200, `${result.name} answers at ${result.healthUrl}`);
    t.true(existsSync(componentPaths(config, result.name).logFile));
    t.true(readFileSync(`/proc/${result.pid}/cmdline`, 'utf8').includes(`diamond-${result.name}@${config.home}`), 'marked with its name and home');
  }

  t.true(local.tokenCreated);
  const file = readLocalPlatform(config);
  t.truthy(file?.token);
  t.is(file?.controlUrl, `http://127.0.0.1:${config.http.controlPort}`);
  t.is(file?.ingestUrl, `http://127.0.0.1:${config.http.ingestPort}`);
  t.is(file?.feedbackUrl, `http://127.0.0.1:${config.http.feedbackPort}`);
  const redis = createRedis(config, { keyPrefix: defaultOrchestratorOptions(config).keyPrefix });
  await redis.connect();
  t.is((await new TokenStore(redis).verify(file!.token))?.role, 'admin');
  redis.disconnect();
  t.is(await httpStatus(`${file!.controlUrl}/v1/status`, file!.token), 200, 'the control API accepts the token');
  t.is(await httpStatus(`${file!.controlUrl}/v1/status`), 401);
});

test.serial('a second up (the CLI) reuses every process and the token', async (t) => {
  const { env, cold } = platform!;
  const { stdout, seconds } = await runCli(['up', '--json'], env);
  const summary = JSON.parse(stdout) as { platform: ComponentResult[]; supervisor: { outcome: string; pid: number }; services: { outcome: string }[]; tokenCreated: boolean; localConfig: string; endpoints: Record<string, string> };
  t.log(`warm up (CLI, incl. node start): ${seconds.toFixed(1)} s`);
  t.deepEqual(summary.platform.map((r) => [r.name, r.outcome, r.pid]), cold.map((r) => [r.name, 'reused', r.pid]));
  t.true(summary.services.every((s) => s.outcome === 'reused' || s.outcome === 'external'));
  t.is(summary.supervisor.outcome, 'reused', 'the supervisor the cold up started still runs');
  t.true(isAlive(summary.supervisor.pid));
  t.false(summary.tokenCreated);
  t.is(summary.localConfig, join(platform!.home, 'local.json'));
});

test.serial('down --keep-services stops exactly those processes and the live jobs (kept deployed, state stopped), and leaves the services up', async (t) => {
  const { config, env, cold, home } = platform!;
  const fakeJob = await startFakeJob(join(home, 'fake-job'));
  platform!.fakeJob = fakeJob;
  const { exitFile } = fakeJob;

  const usecase = uniqueName('platform_test').replaceAll('-', '_');
  const jobId = jobIdFor(usecase, 'A');
  const redis = createRedis(config, { keyPrefix: defaultOrchestratorOptions(config).keyPrefix });
  await redis.connect();
  const store = new DeploymentStore(redis);
  try {
    // Deployed with the version it runs, so the test's orchestrator leaves it running.
    const deployment = await store.putDeployment({ usecase, variant: 'A', folder: join(home, 'nowhere'), version: 'fake1' });
    await store.putJob(runningRecord(jobId, usecase, deployment.generation, fakeJob));

    const { stdout, seconds } = await runCli(['down', '--keep-services', '--json'], env);
    t.log(`down --keep-services (CLI, with one job): ${seconds.toFixed(1)} s`);
    const summary = JSON.parse(stdout) as {
      supervisor: { stopped: boolean; pid: number | null }; platform: { name: string; pid: number | null; stopped: boolean; forced: boolean }[];
      jobs: { job: string; pids: number[]; forced: boolean }[] | null; services: unknown; kept: string[];
    };
    t.true(summary.supervisor.stopped, 'the supervisor is stopped (first, so it restarts nothing)');
    t.false(isAlive(summary.supervisor.pid!));
    t.false(existsSync(supervisorPaths(config).pidFile));
    t.regex(summary.kept.join('\n'), /deployments.*tokens.*customer and source keys, rollout weights/);
    t.regex(summary.kept.join('\n'), /committed offsets/);
    const byName = new Map(summary.platform.map((s) => [s.name, s]));
    for (const result of cold) {
      t.like(byName.get(result.name), { pid: result.pid, stopped: true, forced: false }, `${result.name} stopped gracefully`);
      t.false(isAlive(result.pid!), `${result.name} pid ${result.pid} is gone`);
    }
    t.deepEqual(summary.platform.map((s) => s.name), ['upstream', 'orchestrator', 'downstream']);
    t.deepEqual(summary.jobs, [{ job: jobId, usecase, variant: 'A', pids: [fakeJob.groupPid], forced: false }]);
    t.false(isAlive(fakeJob.groupPid));
    t.is(readFileSync(exitFile, 'utf8').trim(), '0', 'the job was asked to stop, not killed');
    t.is(summary.services, null);

    const record = await store.getJob(jobId);
    t.like(record, { state: 'stopped', current: null, next: null, retiring: [] });
    t.truthy(await store.getDeployment(usecase, 'A'), 'the deployment stays, so the next up starts it again');
    t.is(await store.leaseHolder(), null, 'down released the lease it held while stopping jobs');
  } finally {
    redis.disconnect();
  }

  await t.notThrowsAsync(checkRedis(sharedConfig));
  await t.notThrowsAsync(checkKafka(sharedConfig));
  for (const name of PLATFORM_COMPONENTS) t.false(existsSync(componentPaths(config, name).pidFile));

  // Nothing left to stop: a second down is a no-op.
  const again = JSON.parse((await runCli(['down', '--keep-services', '--json'], env)).stdout) as { platform: { stopped: boolean }[]; jobs: unknown[] };
  t.true(again.platform.every((s) => !s.stopped));
  t.deepEqual(again.jobs, []);
});

test.serial('stopping jobs commits their last progress reports with the orchestrator\'s handler and publishes stopped events', async (t) => {
  const { config, home } = platform!;
  const options: OrchestratorOptions = {
    ...defaultOrchestratorOptions(config),
    keyPrefix: `${uniqueName('platform-test')}:`,
    jobPrefix: `${uniqueName('pt')}.`,
    topics: { input: uniqueName('pt-records'), output: uniqueName('pt-feedback'), rejected: uniqueName('pt-rejected'), progress: uniqueName('pt-progress'), events: uniqueName('pt-events') },
    progressGroup: uniqueName('pt-orchestrator'),
    jobsDir: join(home, 'drain', 'jobs'),
    checkpointsDir: join(home, 'drain', 'checkpoints'),
  };
  const kafka = testKafka();
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  await redis.connect();
  const fakeJob = await startFakeJob(join(home, 'drain', 'fake-job'));
  try {
    await ensureTopics(admin, [{ topic: options.topics.input, partitions: 1 }, { topic: options.topics.progress, partitions: 1 }, { topic: options.topics.events, partitions: 1 }]);
    await producer.send({ topic: options.topics.input, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
    const jobId = jobIdFor('drained', 'A', options.jobPrefix);
    await new DeploymentStore(redis).putJob(runningRecord(jobId, 'drained', 1, fakeJob));
    // The job's last finished batch, reported while no orchestrator consumed the progress topic.
    const report = JSON.stringify({
      job: jobId, usecase: 'drained', variant: 'A', version: 'fake1', event: 'progress', at: new Date().toISOString(),
      batch_id: 0, start_offsets: { '0': 0 }, end_offsets: { '0': 3 }, rows_in: 3, rows_out: 0, rows_rejected: 0,
    });
    await producer.send({ topic: options.topics.progress, messages: [{ key: jobId, value: signProgress(report, fakeJob.progressKey!) }] });

    const stopped = await stopJobs(config, options, createLogger({ logLevel: 'warn' }, { fd: 2, bindings: { test: 'platform' } }), { graceMs: 10_000 });
    t.deepEqual(stopped.map((job) => [job.job, job.forced]), [[jobId, false]]);
    t.deepEqual(await readJobOffsets(admin, jobId, options.topics.input), { '0': 3 }, 'the next start resumes after the last reported batch');
    const events = await consumeUntil(kafka, options.topics.events, (messages) => messages.length >= 1, 30_000);
    t.like(JSON.parse(events[0]!.value!.toString()), { event: 'stopped', job: jobId, exitCode: 0, by: 'diamond down' });
  } finally {
    if (isAlive(fakeJob.groupPid)) process.kill(-fakeJob.groupPid, 'SIGKILL');
    redis.disconnect();
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
});
