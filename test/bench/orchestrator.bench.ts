/**
 * `npm run bench -- orchestrator` (issue 5, "Measure and report"). One orchestrator runs as
 * its own process (test/bench/orchestrator-server.ts: the reconcile loop and the control
 * API, as `diamond serve orchestrator` runs them) on isolated names, with the default tick
 * (1 s) and restart backoff (2 s, ±20 % jitter) unless DIAMOND_ORCHESTRATOR_* say otherwise.
 *
 *   (a) deploy → first feedback of a new use case: POST /v1/deployments (what `diamond
 *       deploy` sends; the route runs deployUsecase, validation included) of a fresh copy
 *       of data_quality (a new code version, so the sample check really runs), 200 records
 *       waiting in its input, until the first feedback reaches a consumer. Baseline: a bare
 *       spark-submit of the same runner (usecases/sdk/launch_job.py, as the orchestrator
 *       starts it) on the same kind of input, from launch to first feedback. Broken down
 *       into validation, pickup by the loop, Spark start and first batch.
 *   (b) kill -9 of the running job's process group → the first feedback of a record
 *       produced after the kill (detection, backoff, restart from the committed offsets).
 *   (d) upgrade: a new version of the running data_quality deployed under a trickle of
 *       records → the new version's first feedback; the handover's pause (old version asked
 *       to stop → new query started at the boundary) from its running event.
 *   (e) the pool (DIAMOND_POOL_SIZE, default one spare): the time to refill it after (a)
 *       took its spare, and the memory of an idle spare (RSS of its process tree).
 *   (c) the orchestrator's memory: its RSS sampled from /proc every 200 ms for its whole
 *       life, and the peak while it supervises 2 jobs (data_quality and the stateful
 *       spending_spike) under a trickle of records, with /v1/status polled every second and
 *       one /v1/events stream open. Baseline: an idle Node process with the same clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, cpSync, createWriteStream, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka, Producer } from 'kafkajs';
import { ensureTopics } from '../../shared/kafka.ts';
import { createRedis } from '../../shared/redis.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { CustomerRecord, Feedback } from '../../shared/schemas.ts';
import type { JobStatus } from '../../infra/orchestrator/control.ts';
import type { OrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { validateUsecase } from '../../infra/orchestrator/validation.ts';
import { config, TEST_USECASE_ROOTS, testKafka, uniqueName } from '../support/env.ts';
import { startUsecaseJob, type JobTopics } from '../support/usecase-job.ts';
import { readPidRecord, signalAll } from '../../shared/process-group.ts';
import { JobLauncher } from '../../infra/orchestrator/launcher.ts';
import type { PoolStatus } from '../../infra/orchestrator/driver-pool.ts';
import { bareNodeFloorMiB, descendantsOf, out, peakRssMiB, rssMiB, type BenchResult } from './results.ts';
import { json, TopicWatcher, type Seen } from './watch.ts';

const registry = createRegistry(config);
const FIRST_FEEDBACK_TIMEOUT = 300_000;
const TWO_JOB_WINDOW_S = Number(process.env['BENCH_ORCH_WINDOW_S'] ?? 30);

function flagged(id: string, i: number): CustomerRecord {
  const now = Date.now();
  // An amount without a currency: data_quality answers every such record with one feedback.
  return { record_id: id, customer_id: `customer-${i % 50}`, source: 'bench', event_time: now, type: 'purchase', amount: 10 + (i % 100), currency: null, attributes: {}, ingested_at: now };
}

async function produce(producer: Producer, topic: string, schemaId: number, records: readonly CustomerRecord[]): Promise<void> {
  const messages = await Promise.all(records.map(async (r) => ({ key: r.customer_id, value: await registry.encode(schemaId, r) })));
  await producer.send({ topic, acks: -1, messages });
}

async function newJobTopics(kafka: Kafka, prefix: string): Promise<JobTopics> {
  const topics: JobTopics = {
    input: uniqueName(`${prefix}-records`), output: uniqueName(`${prefix}-feedback`), rejected: uniqueName(`${prefix}-rejected`),
    progress: uniqueName(`${prefix}-progress`), recordsSubject: uniqueName(`${prefix}-records-value`), feedbackSubject: uniqueName(`${prefix}-feedback-value`),
  };
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: topics.input, partitions: 2 }, { topic: topics.output, partitions: 2 }, { topic: topics.rejected, partitions: 1 }, { topic: topics.progress, partitions: 1 }]);
  await admin.disconnect();
  return topics;
}

const seconds = (ms: number): number => ms / 1000;
const atOf = (message: Record<string, unknown>): number => (typeof message['at'] === 'string' ? Date.parse(message['at']) : Number.NaN);

/** (a) baseline: the runner started by hand with spark-submit, launch → first feedback. */
async function bareLaunch(kafka: Kafka, producer: Producer): Promise<{ totalMs: number; startMs: number; firstBatchMs: number }> {
  const topics = await newJobTopics(kafka, 'bench-orch-bare');
  const schemaId = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  await produce(producer, topics.input, schemaId, Array.from({ length: 200 }, (_, i) => flagged(`bare-${i}`, i)));
  const [output, progress] = await Promise.all([TopicWatcher.start(kafka, topics.output), TopicWatcher.start(kafka, topics.progress, json)]);
  try {
    const launched = Date.now();
    const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'data_quality'), 'A', topics);
    const first = await output.waitFor('bare job: first feedback', (seen) => seen[0]?.at, FIRST_FEEDBACK_TIMEOUT).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${job.log().slice(-3000)}`);
    });
    const started = await progress.waitFor('bare job: query started', (seen) => seen.find((m) => m.value['event'] === 'started')?.value, 30_000);
    process.kill(await job.driverPid(), 'SIGTERM');
    const exited = await Promise.race([job.exited, sleep(60_000).then(() => 'timeout' as const)]);
    if (exited === 'timeout') job.child.kill('SIGKILL');
    const startedAt = atOf(started);
    return { totalMs: first - launched, startMs: startedAt - launched, firstBatchMs: first - startedAt };
  } finally {
    await Promise.all([output.stop(), progress.stop()]);
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topics.input, topics.output, topics.rejected, topics.progress] }).catch(() => undefined);
    await admin.disconnect();
  }
}

interface Orchestrator {
  readonly child: ChildProcess;
  readonly url: string;
  readonly tickMs: number;
  readonly backoffMs: number;
  readonly samples: { at: number; mib: number }[];
  stopSampling(): void;
}

async function startOrchestrator(options: OrchestratorOptions, logFile: string): Promise<Orchestrator> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(config.projectRoot, 'test', 'bench', 'orchestrator-server.ts'), JSON.stringify(options)], {
    cwd: config.projectRoot, stdio: ['ignore', 'pipe', 'pipe'],
    // The bench deploys fresh copies from its temporary work directory: a use case root like the tests'.
    env: { DIAMOND_USECASE_ROOTS: TEST_USECASE_ROOTS, ...process.env, DIAMOND_LOG_LEVEL: process.env['DIAMOND_LOG_LEVEL'] ?? 'info' },
  });
  child.stderr.pipe(createWriteStream(logFile));
  const samples: { at: number; mib: number }[] = [];
  const timer = setInterval(() => samples.push({ at: Date.now(), mib: rssMiB(child.pid!) }), 200);
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the bench orchestrator exited with ${String(code)} before it was ready; see ${logFile}`);
  });
  const [line] = (await Promise.race([once(createInterface({ input: child.stdout }), 'line'), exited])) as [string];
  const ready = JSON.parse(line) as { url: string; tickMs: number; backoffMs: number };
  return { child, url: ready.url, tickMs: ready.tickMs, backoffMs: ready.backoffMs, samples, stopSampling: () => clearInterval(timer) };
}

class ControlClient {
  constructor(private readonly url: string, private readonly token: string) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.url}${path}`, {
      method, headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as T };
  }

  async deploy(usecase: string, dir: string): Promise<void> {
    const answer = await this.call<unknown>('POST', '/v1/deployments', { usecase, variant: 'A', dir, startingOffsets: 'earliest' });
    if (answer.status !== 202) throw new Error(`deploy of ${usecase} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }

  async pool(): Promise<PoolStatus | null> {
    const answer = await this.call<{ pool?: PoolStatus }>('GET', '/v1/status');
    return answer.body.pool ?? null;
  }

  async jobs(): Promise<JobStatus[]> {
    const answer = await this.call<{ jobs: JobStatus[] }>('GET', '/v1/status');
    if (answer.status !== 200) throw new Error(`status answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body.jobs;
  }

  async waitForJob(job: string, done: (status: JobStatus) => boolean, timeoutMs: number): Promise<JobStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: JobStatus | undefined;
    while (Date.now() < deadline) {
      last = (await this.jobs()).find((j) => j.job === job);
      if (last && done(last)) return last;
      await sleep(250);
    }
    throw new Error(`${job} did not reach the expected state in ${timeoutMs / 1000} s; last status ${JSON.stringify(last)}`);
  }
}

export async function run(): Promise<BenchResult> {
  const benchStarted = performance.now();
  const kafka = testKafka();
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const work = mkdtempSync(join(tmpdir(), 'diamond-bench-orch-'));
  const prefix = uniqueName('bench-orch');
  const options: OrchestratorOptions = {
    keyPrefix: `${prefix}:`,
    jobPrefix: `${prefix}.`,
    topics: {
      input: `${prefix}-records`, output: `${prefix}-feedback`, rejected: `${prefix}-rejected`, progress: `${prefix}-progress`, events: `${prefix}-events`,
      recordsSubject: `${prefix}-records-value`, feedbackSubject: `${prefix}-feedback-value`,
    },
    progressGroup: `${prefix}-orchestrator`,
    jobsDir: join(work, 'jobs'),
    checkpointsDir: join(work, 'checkpoints'),
  };
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: options.topics.input, partitions: 2 }, { topic: options.topics.output, partitions: 2 }, { topic: options.topics.rejected, partitions: 1 }]);
  const schemaId = await registerContract(registry, 'CustomerRecord', options.topics.recordsSubject);
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  await redis.connect();
  const logFile = join(config.home, 'logs', `bench-orchestrator-${prefix}.log`);
  const dq = jobIdFor('data_quality', 'A', options.jobPrefix);
  const spike = jobIdFor('spending_spike', 'A', options.jobPrefix);
  let orchestrator: Orchestrator | null = null;
  const watchers: TopicWatcher<unknown>[] = [];
  out(`orchestrator bench: isolated orchestrator process (reconcile loop + control API), its log ${logFile}`);

  try {
    out('… baseline: bare spark-submit of launch_job.py (data_quality), launch → first feedback');
    const bare = await bareLaunch(kafka, producer);
    out(`  ${seconds(bare.totalMs).toFixed(1)} s (Spark start ${seconds(bare.startMs).toFixed(1)} s + first batch ${seconds(bare.firstBatchMs).toFixed(1)} s)`);

    const floor = await bareNodeFloorMiB(config.projectRoot, ['kafka', 'redis']);
    orchestrator = await startOrchestrator(options, logFile);
    const token = await new TokenStore(redis).add('deployer', 'bench');
    const control = new ControlClient(orchestrator.url, token);
    await produce(producer, options.topics.input, schemaId, Array.from({ length: 200 }, (_, i) => flagged(`before-${i}`, i)));
    const output = await TopicWatcher.start(kafka, options.topics.output, async (value) => (await registry.decode(value)) as Feedback);
    const events = await TopicWatcher.start(kafka, options.topics.events, json);
    const progress = await TopicWatcher.start(kafka, options.topics.progress, json);
    watchers.push(output, events, progress);
    const event = (name: string, job: string, after = 0) => (seen: readonly Seen<Record<string, unknown>>[]): Record<string, unknown> | undefined =>
      seen.find((m) => m.value['event'] === name && m.value['job'] === job && atOf(m.value) >= after)?.value;

    // (a) deploy a new use case: a copy of data_quality with a new code version.
    out('… (a) deploy a new use case (fresh copy of data_quality: new version, cold validation) → first feedback');
    const folder = join(work, 'usecases', 'data_quality');
    cpSync(join(config.projectRoot, 'usecases', 'data_quality'), folder, { recursive: true, filter: (source) => !source.includes('__pycache__') });
    appendFileSync(join(folder, 'job.py'), `\n# bench copy ${prefix}\n`);
    const deployStarted = Date.now();
    await control.deploy('data_quality', folder);
    const deployAnswered = Date.now();
    const firstFeedback = await output.waitFor('deployed job: first feedback', (seen) => seen[0]?.at, FIRST_FEEDBACK_TIMEOUT);
    const starting = await events.waitFor('starting event', event('starting', dq), 30_000);
    const started = await progress.waitFor('query started', event('started', dq), 30_000);
    const deploy = {
      totalMs: firstFeedback - deployStarted, validationMs: deployAnswered - deployStarted, pickupMs: atOf(starting) - deployAnswered,
      startMs: atOf(started) - atOf(starting), firstBatchMs: firstFeedback - atOf(started),
    };
    const cachedValidation = await validateUsecase(config, folder, 'A', { feedbackSubject: options.topics.feedbackSubject! });
    out(`  ${seconds(deploy.totalMs).toFixed(1)} s = validation ${seconds(deploy.validationMs).toFixed(1)} s + pickup by the loop ${seconds(deploy.pickupMs).toFixed(1)} s`
      + ` + Spark start ${seconds(deploy.startMs).toFixed(1)} s + first batch ${seconds(deploy.firstBatchMs).toFixed(1)} s`);
    out(`  (a redeploy of code that passed validation before takes ${seconds(cachedValidation.report.totalMs).toFixed(1)} s to validate: sample check ${cachedValidation.report.sample})`);

    // (e) the pool: (a) took its spare (when one was ready); time until it is full again.
    const pool = await refill(control, deployAnswered);
    const spareMiB = idleSpareMiB(options.jobsDir);
    out(`  pool: ${pool ? `size ${pool.size}, refilled ${seconds(pool.refillMs).toFixed(1)} s after the deploy took a spare` : 'off'}; an idle spare's process tree ${spareMiB === null ? 'n/a' : `${spareMiB.toFixed(0)} MiB`}`);

    // (b) kill -9 the job's process group, then produce; time to the first feedback of those records.
    const running = await control.waitForJob(dq, (s) => s.state === 'running' && s.pid !== null && s.lag === 0, 120_000);
    await sleep(2000);
    out(`… (b) kill -9 of the job's process group (pid ${running.pid}) → first feedback of a record produced after the kill`);
    const killedAt = Date.now();
    process.kill(-running.pid!, 'SIGKILL');
    await produce(producer, options.topics.input, schemaId, Array.from({ length: 100 }, (_, i) => flagged(`after-${i}`, i)));
    const recovered = await output.waitFor('first feedback after the kill', (seen) => seen.find((m) => m.at >= killedAt && (m.value.record_ids[0] ?? '').startsWith('after-'))?.at, FIRST_FEEDBACK_TIMEOUT);
    const failed = await events.waitFor('failed event', event('failed', dq, killedAt - 1000), 30_000);
    const restarted = await events.waitFor('restarted event', event('restarted', dq, killedAt - 1000), 30_000);
    const restartedQuery = await progress.waitFor('query started again', event('started', dq, killedAt), 30_000);
    const recovery = {
      totalMs: recovered - killedAt, detectMs: atOf(failed) - killedAt, backoffMs: atOf(restarted) - atOf(failed),
      startMs: atOf(restartedQuery) - atOf(restarted), firstBatchMs: recovered - atOf(restartedQuery),
    };
    out(`  ${seconds(recovery.totalMs).toFixed(1)} s = crash seen ${seconds(recovery.detectMs).toFixed(1)} s + backoff ${seconds(recovery.backoffMs).toFixed(1)} s`
      + ` + Spark start ${seconds(recovery.startMs).toFixed(1)} s + first batch ${seconds(recovery.firstBatchMs).toFixed(1)} s  (tick ${orchestrator.tickMs} ms, backoff ${orchestrator.backoffMs} ms ±20 %)`);

    // (d) upgrade the running job to a new version under a trickle of records.
    await control.waitForJob(dq, (s) => s.state === 'running' && s.lag === 0, 120_000);
    await refill(control, Date.now());
    out('… (d) upgrade data_quality to a new version while it runs (a trickle of 10 records/s) → the new version\'s first feedback');
    appendFileSync(join(folder, 'job.py'), `\n# bench upgrade ${prefix}\n`);
    let u = 0;
    const trickle = setInterval(() => void produce(producer, options.topics.input, schemaId, [flagged(`upgrade-${u}`, u++)]).catch(() => undefined), 100);
    let upgrade: { totalMs: number; validationMs: number; pauseMs: number | null; drainMs: number | null };
    try {
      const upgradeStarted = Date.now();
      await control.deploy('data_quality', folder);
      const upgradeAnswered = Date.now();
      const promoted = await events.waitFor('running event of the new version', (seen) => seen.find((m) => m.value['event'] === 'running' && m.value['job'] === dq && typeof m.value['upgradedFrom'] === 'string' && atOf(m.value) >= upgradeStarted)?.value, FIRST_FEEDBACK_TIMEOUT);
      const firstOfNew = await output.waitFor('the new version\'s first feedback', (seen) => seen.find((m) => m.at >= upgradeStarted && m.value.version === promoted['version'])?.at, FIRST_FEEDBACK_TIMEOUT);
      const number = (value: unknown): number | null => (typeof value === 'number' ? value : null);
      upgrade = { totalMs: firstOfNew - upgradeStarted, validationMs: upgradeAnswered - upgradeStarted, pauseMs: number(promoted['pauseMs']), drainMs: number(promoted['drainMs']) };
    } finally {
      clearInterval(trickle);
    }
    out(`  ${seconds(upgrade.totalMs).toFixed(1)} s = validation ${seconds(upgrade.validationMs).toFixed(1)} s + warm start and handover; the stream paused ${upgrade.pauseMs ?? '?'} ms (drain ${upgrade.drainMs ?? '?'} ms)`);

    // (c) two jobs supervised: memory while the API is used and records flow.
    out(`… (c) a second job (spending_spike, stateful), then ${TWO_JOB_WINDOW_S} s of 100 records/s with /v1/status every second and an open /v1/events stream`);
    await control.deploy('spending_spike', join(config.projectRoot, 'usecases', 'spending_spike'));
    await control.waitForJob(spike, (s) => s.state === 'running', FIRST_FEEDBACK_TIMEOUT);
    await control.waitForJob(dq, (s) => s.state === 'running', 120_000);
    const stream = new AbortController();
    const streamed = fetch(`${orchestrator.url}/v1/events?last=50&follow=1`, { headers: { authorization: `Bearer ${token}` }, signal: stream.signal })
      .then(async (response) => {
        let bytes = 0;
        for await (const chunk of response.body!) bytes += (chunk as Uint8Array).length;
        return bytes;
      })
      .catch(() => 0);
    const windowStart = Date.now();
    let polls = 0;
    let n = 0;
    while (Date.now() - windowStart < TWO_JOB_WINDOW_S * 1000) {
      const tick = Date.now();
      await produce(producer, options.topics.input, schemaId, Array.from({ length: 100 }, () => flagged(`window-${n}`, n++)));
      const jobs = await control.jobs();
      polls++;
      if (jobs.filter((j) => j.state === 'running').length < 2) out(`  warning: ${jobs.map((j) => `${j.job} ${j.state}`).join(', ')}`);
      await sleep(Math.max(0, 1000 - (Date.now() - tick)));
    }
    const windowEnd = Date.now();
    stream.abort();
    await streamed;
    const windowPeak = Math.max(...orchestrator.samples.filter((s) => s.at >= windowStart && s.at <= windowEnd).map((s) => s.mib));
    const lifePeak = peakRssMiB(orchestrator.child.pid!);
    const statuses = await control.jobs();
    out(`  orchestrator RSS: peak ${windowPeak.toFixed(0)} MiB while supervising 2 jobs (${polls} status calls), VmHWM over its life ${lifePeak.toFixed(0)} MiB; idle Node + kafkajs + ioredis ${floor.toFixed(0)} MiB; target ≤ 150 MB (143 MiB)`);
    out(`  jobs: ${statuses.map((s) => `${s.job.slice(options.jobPrefix.length)} ${s.state} restarts ${s.restarts} memory ${s.memoryMb ?? '?'} MB`).join('; ')}`);

    const ratio = (a: number, b: number): string => (a / b).toFixed(2);
    out(`deploy → first feedback ${seconds(deploy.totalMs).toFixed(1)} s vs bare spark-submit ${seconds(bare.totalMs).toFixed(1)} s: ratio ${ratio(deploy.totalMs, bare.totalMs)}`);
    out(`kill -9 → processing again ${seconds(recovery.totalMs).toFixed(1)} s (vs a cold bare start ${seconds(bare.totalMs).toFixed(1)} s: ratio ${ratio(recovery.totalMs, bare.totalMs)})`);

    const sparkStart = 'bare spark-submit of the runner: launch → first feedback';
    return {
      bench: 'orchestrator',
      seconds: (performance.now() - benchStarted) / 1000,
      rows: [
        { component: 'orchestrator', metric: 'deploy → first feedback (new use case)', unit: 's', value: seconds(deploy.totalMs), baseline: seconds(bare.totalMs), baselineIs: sparkStart, better: 'lower', note: `validation ${seconds(deploy.validationMs).toFixed(1)} s + pickup ${seconds(deploy.pickupMs).toFixed(1)} s + Spark start ${seconds(deploy.startMs).toFixed(1)} s + first batch ${seconds(deploy.firstBatchMs).toFixed(1)} s` },
        { component: 'orchestrator', metric: '  of which validation (cold)', unit: 's', value: seconds(deploy.validationMs), baseline: null, baselineIs: 'none (a bare start validates nothing)', better: 'lower', note: `cached: ${seconds(cachedValidation.report.totalMs).toFixed(1)} s` },
        { component: 'orchestrator', metric: 'kill -9 → processing again', unit: 's', value: seconds(recovery.totalMs), baseline: seconds(bare.totalMs), baselineIs: sparkStart, better: 'lower', note: `tick ${orchestrator.tickMs} ms, backoff ${orchestrator.backoffMs} ms ±20 %` },
        { component: 'orchestrator', metric: 'upgrade → new version\'s first feedback', unit: 's', value: seconds(upgrade.totalMs), baseline: seconds(bare.totalMs), baselineIs: sparkStart, better: 'lower', target: '≤ 5 s', note: `validation ${seconds(upgrade.validationMs).toFixed(1)} s; handover pause ${upgrade.pauseMs ?? '?'} ms (drain ${upgrade.drainMs ?? '?'} ms)` },
        { component: 'orchestrator', metric: '  handover pause (old stops → new query starts)', unit: 'ms', value: upgrade.pauseMs ?? Number.NaN, baseline: null, baselineIs: 'none (an overlap has no pause, and no boundary)', better: 'lower', note: `drain ${upgrade.drainMs ?? '?'} ms` },
        { component: 'orchestrator', metric: 'pool refill after a deploy took the spare', unit: 's', value: pool ? seconds(pool.refillMs) : Number.NaN, baseline: null, baselineIs: 'none', better: 'lower', note: pool ? `size ${pool.size}` : 'pool off' },
        { component: 'orchestrator', metric: 'idle spare driver (process tree RSS)', unit: 'MiB', value: spareMiB ?? Number.NaN, baseline: null, baselineIs: 'none', better: 'lower' },
        { component: 'orchestrator', metric: 'peak RSS supervising 2 jobs', unit: 'MiB', value: windowPeak, baseline: floor, baselineIs: 'idle Node+tsx, kafkajs+ioredis connected', better: 'lower', target: '≤ 150 MB (143 MiB)', note: `VmHWM over its life ${lifePeak.toFixed(0)} MiB` },
      ],
      details: {
        bare, deploy, recovery, upgrade, pool, idleSpareMiB: spareMiB, validationCachedMs: cachedValidation.report.totalMs,
        settings: { tickMs: orchestrator.tickMs, backoffInitialMs: orchestrator.backoffMs },
        memory: { windowPeakMiB: windowPeak, lifetimePeakMiB: lifePeak, bareNodeMiB: floor, statusPolls: polls, windowSeconds: TWO_JOB_WINDOW_S },
      },
    };
  } finally {
    await Promise.all(watchers.map((w) => w.stop()));
    const store = new DeploymentStore(createRedis(config, { keyPrefix: options.keyPrefix }));
    for (const record of await store.listJobs().catch(() => [])) {
      for (const job of [record.current, record.next, ...record.retiring.map((r) => r.job)]) {
        if (!job) continue;
        try {
          process.kill(-job.groupPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await store.close();
    const strays = new JobLauncher(config, options.topics, { jobs: options.jobsDir, checkpoints: options.checkpointsDir }).jobProcesses();
    signalAll(strays.map((p) => p.pgid), strays.map((p) => p.pid), 'SIGKILL'); // the pool's spares too
    if (orchestrator) {
      orchestrator.stopSampling();
      orchestrator.child.kill('SIGTERM');
      if (orchestrator.child.exitCode === null) await Promise.race([once(orchestrator.child, 'exit'), sleep(20_000)]);
      if (orchestrator.child.exitCode === null && orchestrator.child.signalCode === null) orchestrator.child.kill('SIGKILL');
    }
    const keys = await redis.keys(`${options.keyPrefix}*`).catch(() => []);
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(options.keyPrefix.length))).catch(() => undefined);
    redis.disconnect();
    const t = options.topics;
    await admin.deleteTopics({ topics: [t.input, t.output, t.rejected, t.progress, t.events] }).catch(() => undefined);
    await admin.deleteGroups([options.progressGroup, dq, spike]).catch(() => undefined);
    await admin.disconnect();
    await producer.disconnect();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Waits until the pool is full again; null when the pool is off. */
async function refill(control: ControlClient, since: number): Promise<{ size: number; refillMs: number } | null> {
  const deadline = Date.now() + FIRST_FEEDBACK_TIMEOUT;
  for (;;) {
    const pool = await control.pool();
    if (!pool || pool.size === 0) return null;
    if (pool.ready >= pool.size) return { size: pool.size, refillMs: Date.now() - since };
    if (Date.now() > deadline) throw new Error(`the pool did not refill in ${FIRST_FEEDBACK_TIMEOUT / 1000} s: ${JSON.stringify(pool)}`);
    await sleep(250);
  }
}

/** RSS of the process tree of a ready spare no job has taken (the newest), MiB. */
function idleSpareMiB(jobsDir: string): number | null {
  const dir = join(jobsDir, '_pool');
  if (!existsSync(dir)) return null;
  const idle = readdirSync(dir).filter((name) => name.endsWith('.ready.json')).map((name) => name.slice(0, -'.ready.json'.length))
    .filter((id) => !existsSync(join(dir, `${id}.assignment.json`)) && !existsSync(join(dir, `${id}.exit`))).sort();
  const group = idle.length > 0 ? readPidRecord(join(dir, `${idle.at(-1)!}.group.pid`)) : null;
  return group ? descendantsOf(group.pid).reduce((sum, pid) => sum + rssMiB(pid), 0) : null;
}
