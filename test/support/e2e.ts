/**
 * A whole, isolated diamond for one end-to-end test, on the real services and real Spark:
 *
 *   HTTP ingest (upstream, in this process) → records topic → orchestrator (its own process,
 *   so it can be kill -9'd) running use case jobs (spark-submit process groups) → feedback
 *   topic → feedback writer (downstream/main.ts as a child process, idem) → a migrated keyspace
 *
 * Every name is unique per fixture (topics, subjects, consumer groups through the job
 * prefix, Redis prefixes, keyspace, directories), so tests run beside other suites. The
 * teardown stops every process the fixture started, by pid, and removes what it created;
 * it keeps the work directory (job logs) when the test failed.
 *
 *   const d = await startDiamond(t, 'baseline');
 *   await d.deploy('data_quality', 'A');
 *   const stream = d.stream(e2eDataset(), 200);
 *   await d.settle(t, stream, { jobs: [...] });   // asserts every row
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import type { Admin, Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { createCassandra, type CassandraClient } from '../../shared/cassandra.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { parseLifecycleEvent, type LifecycleEventMessage } from '../../shared/messages.ts';
import { createRedis } from '../../shared/redis.ts';
import { createRegistry } from '../../shared/registry.ts';
import { Subjects, type CustomerRecord, type Feedback } from '../../shared/schemas.ts';
import { RolloutStore } from '../../downstream/rollout-store.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import type { OrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { jobIdFor, type Deployment, type JobRecord } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { startUpstream, type UpstreamService } from '../../upstream/service.ts';
import { SourceStore } from '../../upstream/sources.ts';
import { platformUp, stopComponent } from '../../infra/platform/local-platform.ts';
import { componentPaths, type PlatformComponent } from '../../infra/platform/platform-components.ts';
import { stopSupervisor } from '../../infra/platform/platform-supervisor.ts';
import { runningProcess, signalAll } from '../../shared/process-group.ts';
import { JobLauncher } from '../../infra/orchestrator/launcher.ts';
import { DEMO_CUSTOMERS, generateDataset, SPENDING_WEIGHTS, type Dataset, type InputRecord } from '../../infra/dataset/generator.ts';
import { checkManifestParams, type OracleParams } from '../../infra/dataset/manifest-params.ts';
import { expectedFeedback, inputOf, type Expected, type ExpectedRow } from '../../infra/dataset/oracle.ts';
import { killHard, startDownstreamProcess, type DownstreamProcess } from './downstream-process.ts';
import { consumeUntil, freePort, readToEnd, sumOffsets, TEST_USECASE_ROOTS, testKafka, uniqueKeyspace, uniqueName } from './env.ts';
import { repeated, type OffsetsAt, type ProgressRun } from './resume.ts';

/**
 * The e2e suite's dataset, from the one generator the demo uses too (infra/dataset): the demo's
 * eight customers over 12 hours before now, their patterns every 2 hours (windows where only
 * A, only B, and both fire), faults of every kind, requests of 5 minutes of event time, and a
 * flush purchase 3 hours after the rest that closes every window. Whole amounts, so the
 * oracle's scores equal Spark's exactly.
 */
export function e2eDataset(seed = 7): Dataset {
  return generateDataset({ seed, anchor: Date.now(), customers: DEMO_CUSTOMERS, spanMinutes: 12 * 60, patternEveryMinutes: 120, flushAfterMinutes: 180, wholeAmounts: true, tag: 'r' });
}

/**
 * How long one request may go unacknowledged (refused, timed out) before the stream fails the
 * test. A time window: a service restart in the tests must be back within it.
 */
const STALL_MS = 60_000;

/** Fast supervision so faults heal in seconds; a short lease so a kill -9'd leader is replaced quickly. */
const ORCHESTRATOR_ENV = {
  DIAMOND_ORCHESTRATOR_TICK: '300ms', DIAMOND_ORCHESTRATOR_BACKOFF: '500ms', DIAMOND_ORCHESTRATOR_STARTING_OFFSETS: 'earliest',
  DIAMOND_ORCHESTRATOR_STOP_GRACE: '30s', DIAMOND_ORCHESTRATOR_LEASE: '3s',
};


export interface Stream {
  readonly dataset: Dataset;
  readonly total: number;
  /** Requests acknowledged with 202 so far. */
  sent(): number;
  /** Still posting: not every request acknowledged yet and not failed. */
  sending(): boolean;
  /** Why the stream stopped early (ingest answered an error, or refused one request for STALL_MS), or null. */
  failure(): Error | null;
  /** Record id → times its request was refused or timed out and sent again (only these records may land more than once). */
  resent(): ReadonlyMap<string, number>;
  /** Sends no request past the first `fraction` of them until `release()`; returns that request's index. */
  holdAt(fraction: number): number;
  release(): void;
  /** Resolves when every request was acknowledged; counts from the 202 answers. */
  readonly done: Promise<{ accepted: number; rejected: number; refused: number }>;
}

export interface SettleOptions {
  /** Jobs whose committed offsets must reach the end of the records topic. */
  readonly jobs: readonly string[];
  /** Copies of data_quality deployed under other names. */
  readonly copies?: readonly string[];
  /**
   * A record of a refused or timed-out request may land twice (Kafka acknowledged it late, the
   * stream sent it again); every other record still lands once.
   */
  readonly duplicatesAllowed?: boolean;
  readonly timeoutMs?: number;
}

export interface Settled {
  readonly expected: Expected;
  readonly landed: readonly InputRecord[];
  readonly delivered: readonly ActualRow[];
}

export interface ActualRow extends ExpectedRow {
  readonly version: string;
}

export interface Diamond {
  readonly config: DiamondConfig;
  readonly options: OrchestratorOptions;
  readonly store: DeploymentStore;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly cassandra: CassandraClient;
  readonly keyspace: string;
  readonly workDir: string;
  /** The writer's Redis prefix, where it reads the rollout weights (a control API passes it as `rolloutKeyPrefix`). */
  readonly rolloutKeyPrefix: string;
  /** This diamond's ingest API (a control API reports it among its endpoints). */
  readonly ingestUrl: string;
  jobId(usecase: string, variant: string): string;
  /** Validates and deploys a folder (default: usecases/<usecase>) from the earliest offsets. */
  deploy(usecase: string, variant: string, folder?: string): Promise<Deployment>;
  /** A copy of usecases/<from> in the work directory, renamed to `name` when given. */
  copyUsecase(from: string, name?: string): string;
  job(jobId: string): Promise<JobRecord>;
  waitForJob(jobId: string, done: (record: JobRecord) => boolean, timeoutMs?: number): Promise<JobRecord>;
  /** Polls until the job's group committed more than `records` input offsets. */
  waitForProcessed(jobId: string, records: number, timeoutMs?: number): Promise<void>;
  orchestratorPid(): number | null;
  killOrchestrator(): Promise<void>;
  startOrchestrator(): Promise<void>;
  writerPid(): number | null;
  /** Exit code or signal of the writer process when it ended on its own or was killed; null while it runs. */
  writerExit(): string | null;
  killWriter(): Promise<void>;
  startWriter(): Promise<void>;
  /**
   * Posts the dataset's requests in order, `pauseMs` apart, retrying refused ones; `stallMs`:
   * how long one request may go unacknowledged before the stream fails (default STALL_MS;
   * a test with a longer outage passes more).
   */
  stream(dataset: Dataset, pauseMs: number, options?: { stallMs?: number }): Stream;
  /** Waits until the stream is done and every row is delivered; asserts the rows. */
  settle(t: ExecutionContext, stream: Stream, options: SettleOptions): Promise<Settled>;
  /** Lifecycle events published so far. */
  events(): Promise<LifecycleEventMessage[]>;
  /** Polls until the writer has written more than `rows` rows (any variant). */
  waitForWritten(rows: number, timeoutMs?: number): Promise<void>;
  /** Rows in feedback_by_variant now. */
  rowsWritten(): Promise<number>;
  /** The writer's committed offsets on the feedback topic and that topic's end offsets. */
  writerOffsets(): Promise<OffsetsAt>;
  /** Polls until the feedback topic's end is past the writer's committed offsets (feedback it has not written); throws after `timeoutMs`. */
  waitForWriterBehind(timeoutMs?: number): Promise<OffsetsAt>;
  /** The writer's log so far (pino lines on stderr). */
  writerLog(): string;
  /** Every message on the feedback topic, read up to its end offsets, as job id → feedback ids in order. */
  feedbackOnTopic(): Promise<Map<string, string[]>>;
  /** Every feedback message on the feedback topic, decoded, in topic order per partition. */
  feedbackMessages(): Promise<Feedback[]>;
  /** Pid of the `diamond serve upstream` process the supervisor runs (supervised upstream only). */
  upstreamPid(): number | null;
}

export interface DiamondOptions {
  /**
   * 'in-process' (default): the ingest API runs inside the test. 'supervised': `diamond serve
   * upstream` runs under the platform supervisor of `diamond up` (a home of its own in the
   * work directory), on the test's topics, so a kill -9 of it is followed by the supervisor's
   * restart, as on an operator's machine.
   */
  readonly upstream?: 'in-process' | 'supervised';
}

export async function startDiamond(t: ExecutionContext, name: string, diamondOptions: DiamondOptions = {}): Promise<Diamond> {
  const config = loadConfig({ DIAMOND_USECASE_ROOTS: TEST_USECASE_ROOTS, ...process.env, ...ORCHESTRATOR_ENV });
  // The oracle models the manifests' params; fail before streaming when one is gone or garbled.
  const params: OracleParams = checkManifestParams(config.projectRoot);
  const prefix = `e2e-${name}`;
  const workDir = mkdtempSync(join(tmpdir(), `diamond-${prefix}-`));
  const options: OrchestratorOptions = {
    keyPrefix: `${uniqueName(`test-${prefix}-orch`)}:`,
    jobPrefix: `${uniqueName(prefix)}.`,
    topics: {
      input: uniqueName(`${prefix}-records`), output: uniqueName(`${prefix}-feedback`), rejected: uniqueName(`${prefix}-feedback-rejected`),
      progress: uniqueName(`${prefix}-progress`), events: uniqueName(`${prefix}-events`),
      recordsSubject: uniqueName(`${prefix}-records-value`), feedbackSubject: uniqueName(`${prefix}-feedback-value`),
    },
    progressGroup: uniqueName(`${prefix}-orchestrator`),
    jobsDir: join(workDir, 'jobs'),
    checkpointsDir: join(workDir, 'checkpoints'),
    writerGroup: uniqueName(`${prefix}-writer`),
  };
  const upstreamRejected = uniqueName(`${prefix}-records-rejected`);
  const writerRejected = uniqueName(`${prefix}-writer-rejected`);
  const writerGroup = options.writerGroup!;
  const keyspace = uniqueKeyspace(`e2e_${name.replaceAll('-', '_')}`);
  const downstreamPrefix = `${uniqueName(`test-${prefix}-down`)}:`;
  const upstreamPrefix = `${uniqueName(`test-${prefix}-up`)}:`;
  const topics = [options.topics.input, options.topics.output, options.topics.rejected, options.topics.progress, options.topics.events, upstreamRejected, writerRejected];

  const kafka = testKafka();
  const admin = kafka.admin();
  const cassandra = createCassandra(config);
  const redis: Redis = createRedis(config);
  const store = new DeploymentStore(createRedis(config, { keyPrefix: options.keyPrefix }));
  const registry = createRegistry(config);
  await Promise.all([admin.connect(), cassandra.connect()]);

  let upstream: UpstreamService | null = null;
  let supervised: { config: DiamondConfig; component: PlatformComponent } | null = null;
  let orchestrator: ChildProcess | null = null;
  let orchestratorLog = '';
  let writer: DownstreamProcess | null = null;
  t.teardown(async () => {
    // The orchestrator first, or it would restart the jobs killed next.
    if (orchestrator) await killChild(orchestrator);
    for (const record of await store.listJobs().catch(() => [])) {
      for (const job of [record.current, record.next, ...record.retiring.map((r) => r.job)]) {
        if (job) signalGroup(job.groupPid);
      }
    }
    // And every other process with a launch marker under this diamond's jobs directory: the
    // pool's spares (the killed orchestrator cannot stop them; one left per test held a
    // driver's memory for the rest of the suite) and any orphan of a failed test.
    const strays = new JobLauncher(config, options.topics, { jobs: options.jobsDir, checkpoints: options.checkpointsDir }).jobProcesses();
    signalAll(strays.map((p) => p.pgid), strays.map((p) => p.pid), 'SIGKILL');
    if (writer) await killHard(writer.child);
    await upstream?.close().catch(() => undefined);
    if (supervised) {
      await stopSupervisor(supervised.config).catch(() => undefined);
      await stopComponent(supervised.config, 'upstream', [supervised.component]).catch(() => undefined);
    }
    await store.close().catch(() => undefined);
    const groups = [writerGroup, options.progressGroup, ...(await store.listDeployments().catch(() => [])).map((d) => jobIdFor(d.usecase, d.variant, options.jobPrefix))];
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
    await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    await cassandra.shutdown();
    for (const keyPrefix of [options.keyPrefix, downstreamPrefix, upstreamPrefix]) {
      const keys = await redis.keys(`${keyPrefix}*`).catch(() => []);
      if (keys.length > 0) await redis.del(...keys).catch(() => undefined);
    }
    redis.disconnect();
    if (t.passed) rmSync(workDir, { recursive: true, force: true });
    else t.log(`kept ${workDir} (job logs under jobs/)`);
  });

  // Created up front with two partitions each, so that ordering across partitions is exercised.
  await ensureTopics(admin, [
    { topic: options.topics.input, partitions: 2 }, { topic: options.topics.output, partitions: 2 },
    { topic: options.topics.rejected, partitions: 1 }, { topic: upstreamRejected, partitions: 1 }, { topic: writerRejected, partitions: 1 },
  ]);
  let ingestUrl: string;
  let apiKey: string;
  if (diamondOptions.upstream === 'supervised') {
    const env: NodeJS.ProcessEnv = {
      // Its own home, the shared Redis: that Redis's password file lives in the shared home.
      ...process.env, DIAMOND_HOME: join(workDir, 'platform'), DIAMOND_REDIS_PASSWORD_FILE: config.redis.passwordFile, DIAMOND_INGEST_PORT: String(await freePort()), DIAMOND_LOG_LEVEL: 'info',
      DIAMOND_DEPENDENCY_WAIT: '60s', DIAMOND_PLATFORM_RESTART_BACKOFF: '500ms', DIAMOND_PLATFORM_RESTART_BACKOFF_MAX: '5s',
    };
    const supervisedConfig = loadConfig(env);
    ingestUrl = `http://${supervisedConfig.http.host}:${supervisedConfig.http.ingestPort}`;
    const component: PlatformComponent = {
      name: 'upstream', healthUrl: `${ingestUrl}/readyz`, readyTimeoutMs: 90_000, stopGraceMs: 15_000,
      args: ['serve', 'upstream', '--no-raw-topics', '--normalized-topic', options.topics.input, '--rejected-topic', upstreamRejected,
        '--subject', options.topics.recordsSubject ?? Subjects.CustomerRecord, '--redis-key-prefix', upstreamPrefix],
    };
    supervised = { config: supervisedConfig, component };
    await platformUp(supervisedConfig, createLogger({ logLevel: 'warn' }, { fd: 2 }), { env, components: [component] });
    const sourceRedis = createRedis(config, { keyPrefix: upstreamPrefix });
    ({ apiKey } = await new SourceStore(sourceRedis).add('e2e'));
    sourceRedis.disconnect();
  } else {
    upstream = await startUpstream(config, {
      logger: createLogger({ logLevel: 'silent' }), port: 0, topics: { normalized: options.topics.input, rejected: upstreamRejected },
      subject: options.topics.recordsSubject, redisKeyPrefix: upstreamPrefix, produceTimeoutMs: 5_000,
    });
    ingestUrl = upstream.url;
    ({ apiKey } = await upstream.sources.add('e2e'));
  }
  // Weights before B is deployed: without them downstream passes every variant through.
  const rolloutRedis = createRedis(config, { keyPrefix: downstreamPrefix });
  await new RolloutStore(rolloutRedis).set('spending_spike', SPENDING_WEIGHTS);
  rolloutRedis.disconnect();

  const writerArgs = ['--parts', 'feedback-writer', '--keyspace', keyspace, '--feedback-topic', options.topics.output,
    '--rejected-feedback-topic', writerRejected, '--feedback-group', writerGroup, '--redis-key-prefix', downstreamPrefix];
  const startWriter = async (): Promise<void> => {
    writer = await startDownstreamProcess(writerArgs, 90_000);
  };
  const startOrchestrator = async (): Promise<void> => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(config.projectRoot, 'test', 'support', 'orchestrator-main.ts'), JSON.stringify(options)], {
      cwd: config.projectRoot,
      env: { ...process.env, ...ORCHESTRATOR_ENV, DIAMOND_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr.on('data', (chunk: Buffer) => (orchestratorLog = (orchestratorLog + chunk.toString()).slice(-30_000)));
    await waitForReadyLine(child, 60_000, () => orchestratorLog);
    orchestrator = child;
  };
  await startWriter();
  await startOrchestrator();

  const jobId = (usecase: string, variant: string): string => jobIdFor(usecase, variant, options.jobPrefix);
  const job = async (id: string): Promise<JobRecord> => {
    const record = await store.getJob(id);
    if (!record) throw new Error(`no job record for ${id}`);
    return record;
  };
  const waitForJob = async (id: string, done: (record: JobRecord) => boolean, timeoutMs = 240_000): Promise<JobRecord> => {
    const deadline = Date.now() + timeoutMs;
    let last: JobRecord | null = null;
    while (Date.now() < deadline) {
      last = await store.getJob(id).catch(() => last);
      if (last && done(last)) return last;
      await sleep(250);
    }
    throw new Error(`job ${id} did not reach the expected state in ${timeoutMs} ms; last record: ${JSON.stringify(last)}\norchestrator log:\n${orchestratorLog.slice(-4000)}`);
  };

  const events = async (): Promise<LifecycleEventMessage[]> => {
    const total = (await admin.fetchTopicOffsets(options.topics.events)).reduce((sum, p) => sum + Number(p.high), 0);
    if (total === 0) return [];
    const messages = await consumeUntil(kafka, options.topics.events, (m) => m.length >= total, 30_000);
    return messages.map((m) => {
      const parsed = parseLifecycleEvent(m.value);
      if (!parsed.ok) throw new Error(`a message on ${options.topics.events} breaks lifecycle-event.schema.json: ${parsed.field} ${parsed.problem}`);
      return parsed.message;
    });
  };

  const readLanded = async (): Promise<InputRecord[]> => {
    const total = (await admin.fetchTopicOffsets(options.topics.input)).reduce((sum, p) => sum + Number(p.high), 0);
    const messages = await consumeUntil(kafka, options.topics.input, (m) => m.length >= total, 120_000);
    return Promise.all(messages.map(async (m) => inputOf((await registry.decode(m.value!)) as CustomerRecord)));
  };

  const readRows = (table: FeedbackTable): Promise<ActualRow[]> => readFeedbackRows(cassandra, keyspace, table);

  const caughtUp = async (jobs: readonly string[]): Promise<string[]> => {
    const behind: string[] = [];
    const ends = await topicEndOffsets(admin, options.topics.input);
    for (const id of jobs) {
      const committed = await readJobOffsets(admin, id, options.topics.input);
      if (Object.entries(ends).some(([p, end]) => end > 0 && committed[p] !== end)) behind.push(`${id} at ${JSON.stringify(committed)} of ${JSON.stringify(ends)}`);
    }
    const outputEnds = await topicEndOffsets(admin, options.topics.output);
    const [writerOffsets] = await admin.fetchOffsets({ groupId: writerGroup, topics: [options.topics.output] });
    const written = Object.fromEntries((writerOffsets?.partitions ?? []).map((p) => [String(p.partition), Number(p.offset)]));
    if (Object.entries(outputEnds).some(([p, end]) => end > 0 && written[p] !== end)) behind.push(`writer at ${JSON.stringify(written)} of ${JSON.stringify(outputEnds)}`);
    return behind;
  };

  const diamond: Diamond = {
    config, options, store, kafka, admin, cassandra, keyspace, workDir, rolloutKeyPrefix: downstreamPrefix, ingestUrl, jobId, job, waitForJob, events, startWriter, startOrchestrator,

    deploy: (usecase, variant, folder) =>
      deployUsecase(config, store, null, { usecase, variant, folder: folder ?? join(config.projectRoot, 'usecases', usecase), settings: { startingOffsets: 'earliest' } }, options.jobPrefix),

    copyUsecase(from, newName) {
      const folder = join(workDir, 'usecases', newName ?? from);
      cpSync(join(config.projectRoot, 'usecases', from), folder, { recursive: true, filter: (path) => !path.includes('__pycache__') });
      if (newName) {
        const manifest = join(folder, 'usecase.yaml');
        writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(`name: ${from}`, `name: ${newName}`));
      }
      return folder;
    },

    async waitForProcessed(id, records, timeoutMs = 180_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const committed = Object.values(await readJobOffsets(admin, id, options.topics.input)).filter((o) => o > 0).reduce((a, b) => a + b, 0);
        if (committed > records) return;
        await sleep(250);
      }
      throw new Error(`${id} did not process ${records} records in ${timeoutMs} ms`);
    },

    async rowsWritten() {
      const result = await cassandra.execute(`SELECT count(*) AS n FROM ${keyspace}.feedback_by_variant`);
      return Number(result.first()?.get('n') ?? 0);
    },

    async writerOffsets() {
      const ends = await topicEndOffsets(admin, options.topics.output);
      return { committed: await readJobOffsets(admin, writerGroup, options.topics.output), ends };
    },

    async waitForWriterBehind(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const at = await diamond.writerOffsets();
        if (sumOffsets(at.committed) < sumOffsets(at.ends)) return at;
        // A time window: the jobs emit feedback every few seconds while the stream runs.
        if (Date.now() > deadline) throw new Error(`no feedback beyond the writer's committed offsets within ${timeoutMs} ms (committed ${JSON.stringify(at.committed)}, end ${JSON.stringify(at.ends)}): the fault would not hit data in flight`);
        await sleep(200);
      }
    },

    writerLog: () => writer?.logs() ?? '',

    async feedbackOnTopic() {
      const byJob = new Map<string, string[]>();
      for (const feedback of await this.feedbackMessages()) {
        const id = jobId(feedback.usecase, feedback.variant);
        byJob.set(id, [...(byJob.get(id) ?? []), feedback.feedback_id]);
      }
      return byJob;
    },

    async feedbackMessages() {
      const messages = await readToEnd(kafka, options.topics.output, 120_000);
      return Promise.all(messages.map(async (message) => (await registry.decode(message.value!)) as Feedback));
    },

    async waitForWritten(rows, timeoutMs = 180_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const result = await cassandra.execute(`SELECT count(*) AS n FROM ${keyspace}.feedback_by_variant`).catch(() => null);
        if (Number(result?.first()?.get('n') ?? 0) > rows) return;
        await sleep(250);
      }
      throw new Error(`the writer did not write ${rows} rows in ${timeoutMs} ms`);
    },

    upstreamPid: () => (supervised ? runningProcess(componentPaths(supervised.config, 'upstream').pidFile)?.pid ?? null : null),

    orchestratorPid: () => orchestrator?.pid ?? null,
    async killOrchestrator() {
      if (orchestrator) await killChild(orchestrator);
      orchestrator = null;
    },

    writerPid: () => writer?.child.pid ?? null,
    writerExit: () => {
      const child = writer?.child;
      if (!child) return null;
      return child.exitCode !== null ? `exit ${child.exitCode}` : child.signalCode ?? null;
    },
    async killWriter() {
      if (writer) await killHard(writer.child);
    },

    stream(dataset, pauseMs, { stallMs = STALL_MS } = {}) {
      let sent = 0;
      const resent = new Map<string, number>();
      const gate: { hold: { at: number; released: Promise<void>; release: () => void } | null } = { hold: null };
      const post = async (body: string): Promise<{ status: number; retryAfter: number; answer?: { accepted: number; rejected: number } }> => {
        try {
          const response = await fetch(`${ingestUrl}/v1/records`, {
            method: 'POST', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/x-ndjson' }, body, signal: AbortSignal.timeout(30_000),
          });
          const retryAfter = Number(response.headers.get('retry-after') ?? '1');
          if (response.status !== 202) {
            await response.arrayBuffer();
            return { status: response.status, retryAfter };
          }
          return { status: 202, retryAfter, answer: (await response.json()) as { accepted: number; rejected: number } };
        } catch {
          return { status: 0, retryAfter: 1 }; // connection refused or timed out: retry like a 503
        }
      };
      const done = (async () => {
        let accepted = 0;
        let rejected = 0;
        let refused = 0;
        for (const [index, batch] of dataset.batches.entries()) {
          if (gate.hold && index >= gate.hold.at) await gate.hold.released;
          const body = batch.map((item) => item.line).join('\n');
          // A stream that stops sending fails the test, with where it stopped, within STALL_MS.
          const deadline = Date.now() + stallMs;
          let retried = false;
          for (;;) {
            const { status, retryAfter, answer } = await post(body);
            if (answer) {
              accepted += answer.accepted;
              rejected += answer.rejected;
              break;
            }
            if (status !== 503 && status !== 0) throw new Error(`ingest answered ${status}`);
            refused++;
            retried = true;
            for (const item of batch) resent.set(item.recordId, (resent.get(item.recordId) ?? 0) + 1);
            if (Date.now() > deadline) throw new Error(`the stream stopped sending: request ${index + 1} of ${dataset.batches.length} not acknowledged in ${stallMs / 1000} s (${refused} refusals, last status ${status || 'no answer'})`);
            await sleep(Math.max(1, retryAfter) * 1000);
          }
          sent++;
          // A refused request may still have been written (Kafka acknowledged it late): let
          // that copy land before the next request, so records stay in event-time order.
          await sleep(retried ? 3_000 : pauseMs);
        }
        return { accepted, rejected, refused };
      })();
      let finished = false;
      let failure: Error | null = null;
      // settle() awaits it; no unhandled rejection meanwhile
      done.then(() => (finished = true), (error: unknown) => ((finished = true), (failure = error as Error)));
      return {
        dataset, total: dataset.batches.length, sent: () => sent, done,
        sending: () => !finished && sent < dataset.batches.length,
        failure: () => failure,
        resent: () => resent,
        holdAt(fraction) {
          let release = (): void => undefined;
          const released = new Promise<void>((resolve) => (release = resolve));
          gate.hold = { at: Math.ceil(dataset.batches.length * fraction), released, release };
          return gate.hold.at;
        },
        release: () => gate.hold?.release(),
      };
    },

    async settle(t, stream, settleOptions) {
      const { dataset } = stream;
      const answered = await stream.done;
      // Each request is counted from its one 202 answer, so these are exact even when a refused request landed.
      t.is(answered.accepted, dataset.accepted.size, 'ingest accepted every good record');
      t.is(answered.rejected, dataset.rejected, 'ingest rejected every malformed record');
      if (answered.refused > 0) t.log(`ingest refused ${answered.refused} requests (sent again)`);
      const landed = await readLanded();
      // Upstream: every accepted record landed as generated, nothing else did.
      const landedIds = new Map<string, number>();
      for (const record of landed) landedIds.set(record.record_id, (landedIds.get(record.record_id) ?? 0) + 1);
      const changed = landed.filter((r) => JSON.stringify(r) !== JSON.stringify(dataset.accepted.get(r.record_id))).slice(0, 5);
      t.deepEqual(changed, [], 'every landed record is an accepted record, normalized as generated');
      t.deepEqual([...dataset.accepted.keys()].filter((id) => !landedIds.has(id)), [], 'every accepted record landed');
      const twice = [...landedIds].filter(([, n]) => n > 1).map(([id]) => id);
      if (settleOptions.duplicatesAllowed) {
        const resent = stream.resent();
        // Each copy beyond the first needs a send beyond the first: at most 1 + resends copies.
        const tooMany = [...landedIds].filter(([id, n]) => n > 1 + (resent.get(id) ?? 0)).slice(0, 5);
        t.deepEqual(tooMany, [], `only records of refused or timed-out requests landed more than once, at most once per send (${twice.length} twice, ${resent.size} resent)`);
        if (twice.length > 0) t.log(`${twice.length} of ${resent.size} resent records landed twice (refused, then acknowledged late, then sent again)`);
      } else {
        t.deepEqual(twice, [], 'no record landed twice');
      }

      const expected = expectedFeedback([landed], params, { processedAt: Date.now(), copies: settleOptions.copies, weights: { spending_spike: SPENDING_WEIGHTS } });
      const deadline = Date.now() + (settleOptions.timeoutMs ?? 420_000);
      let verdict: Verdict = { customer: diff(expected.delivered, []), variant: diff(expected.all, []), behind: ['not checked yet'] };
      let matchedAt: number | null = null;
      while (Date.now() < deadline) {
        try {
          const [customer, variant] = await Promise.all([readRows('feedback_by_customer'), readRows('feedback_by_variant')]);
          verdict = { customer: diff(expected.delivered, customer), variant: diff(expected.all, variant), behind: await caughtUp(settleOptions.jobs), rows: customer };
          if (isClean(verdict)) {
            // Stable for a few seconds with everything caught up: nothing more is coming.
            if (matchedAt !== null && Date.now() - matchedAt >= 3_000) break;
            matchedAt ??= Date.now();
          } else {
            matchedAt = null;
          }
        } catch (error) {
          verdict = { ...verdict, behind: [`reading failed: ${String(error)}`] };
          matchedAt = null;
        }
        await sleep(1_000);
      }
      if (!isClean(verdict)) {
        t.log(`behind: ${verdict.behind.join('; ')}`);
        t.log(`writer: ${writer?.logs().slice(-3000) ?? ''}`);
        t.log(`orchestrator: ${orchestratorLog.slice(-3000)}`);
      }
      for (const [table, d] of [['feedback_by_customer', verdict.customer], ['feedback_by_variant', verdict.variant]] as const) {
        t.deepEqual(d.missing.slice(0, 5), [], `${table}: no expected row missing (${d.missing.length} missing)`);
        t.deepEqual(d.extra.slice(0, 5), [], `${table}: no unexpected row (${d.extra.length} extra)`);
        t.deepEqual(d.duplicated, [], `${table}: no feedback_id twice`);
        t.deepEqual(d.mismatched.slice(0, 5), [], `${table}: every row as computed (${d.mismatched.length} differ)`);
      }
      t.deepEqual(verdict.behind, [], 'every job and the writer caught up with their input');
      return { expected, landed, delivered: verdict.rows ?? [] };
    },
  };

  return diamond;
}

export type FeedbackTable = 'feedback_by_customer' | 'feedback_by_variant';

/** Every row of one feedback table of the e2e keyspace, paged. */
export async function readFeedbackRows(cassandra: CassandraClient, keyspace: string, table: FeedbackTable): Promise<ActualRow[]> {
  const rows: ActualRow[] = [];
  let pageState: string | undefined;
  do {
    const result = await cassandra.execute(
      `SELECT feedback_id, customer_id, usecase, variant, version, kind, severity, score, event_time, record_ids FROM ${keyspace}.${table}`,
      [], { fetchSize: 5000, pageState },
    );
    for (const row of result.rows) {
      rows.push({
        feedback_id: row.get('feedback_id') as string, customer_id: row.get('customer_id') as string, usecase: row.get('usecase') as string,
        variant: row.get('variant') as string, version: row.get('version') as string, kind: row.get('kind') as string,
        severity: row.get('severity') as string, score: (row.get('score') as number | null) ?? null,
        event_time: (row.get('event_time') as Date).getTime(), record_ids: (row.get('record_ids') as string[] | null) ?? [],
      });
    }
    pageState = result.pageState ?? undefined;
  } while (pageState);
  return rows;
}

export interface Diff {
  readonly missing: ExpectedRow[];
  readonly extra: ActualRow[];
  readonly duplicated: string[];
  readonly mismatched: { expected: ExpectedRow; actual: ActualRow }[];
}

interface Verdict {
  readonly customer: Diff;
  readonly variant: Diff;
  readonly behind: string[];
  readonly rows?: ActualRow[];
}

const comparable = (row: ExpectedRow): string =>
  JSON.stringify([row.feedback_id, row.customer_id, row.usecase, row.variant, row.kind, row.severity, row.score, row.event_time, row.record_ids]);

/** Expected rows missing, rows nobody expects, ids held twice, rows held differently. */
export function diff(expected: readonly ExpectedRow[], actual: readonly ActualRow[]): Diff {
  const want = new Map(expected.map((row) => [row.feedback_id, row]));
  const seen = new Map<string, number>();
  for (const row of actual) seen.set(row.feedback_id, (seen.get(row.feedback_id) ?? 0) + 1);
  const mismatched: Diff['mismatched'] = [];
  for (const row of actual) {
    const expectedRow = want.get(row.feedback_id);
    if (expectedRow && comparable(expectedRow) !== comparable(row)) mismatched.push({ expected: expectedRow, actual: row });
  }
  return {
    missing: expected.filter((row) => !seen.has(row.feedback_id)),
    extra: actual.filter((row) => !want.has(row.feedback_id)),
    duplicated: [...seen].filter(([, n]) => n > 1).map(([id]) => id),
    mismatched,
  };
}

function isClean(verdict: Verdict): boolean {
  const clean = (d: Diff): boolean => d.missing.length === 0 && d.extra.length === 0 && d.duplicated.length === 0 && d.mismatched.length === 0;
  return clean(verdict.customer) && clean(verdict.variant) && verdict.behind.length === 0;
}

/** Records each job's process group, to prove later that it was never restarted. */
export async function jobSnapshot(d: Diamond, jobIds: readonly string[]): Promise<Map<string, JobRecord>> {
  return new Map(await Promise.all(jobIds.map(async (id) => [id, await d.job(id)] as const)));
}

/**
 * The jobs a fault did not involve: same process group, no restart, still running, and no
 * lifecycle event but starting, running (and adopted, after an orchestrator restart).
 */
export async function assertUntouched(t: ExecutionContext, d: Diamond, before: Map<string, JobRecord>, allowed: readonly string[] = ['starting', 'running']): Promise<void> {
  const events = await d.events();
  for (const [id, earlier] of before) {
    const now = await d.job(id);
    t.is(now.current?.groupPid, earlier.current?.groupPid, `${id}: same process group`);
    t.is(now.restarts, 0, `${id}: never restarted`);
    t.is(now.state, 'running', `${id}: running`);
    const names = [...new Set(events.filter((e) => e.job === id).map((e) => e.event))].sort();
    t.deepEqual(names.filter((name) => !allowed.includes(name)), [], `${id}: lifecycle events ${names.join(', ')}`);
  }
}

/** Deploys data_quality A (from `qualityFolder` when given) and spending_spike A and B, and waits until all three report. */
export async function deployExamples(d: Diamond, qualityFolder?: string): Promise<{ quality: string; spendingA: string; spendingB: string }> {
  // Validation is a Python process per deploy: run the three side by side.
  await Promise.all([d.deploy('data_quality', 'A', qualityFolder), d.deploy('spending_spike', 'A'), d.deploy('spending_spike', 'B')]);
  const jobs = { quality: d.jobId('data_quality', 'A'), spendingA: d.jobId('spending_spike', 'A'), spendingB: d.jobId('spending_spike', 'B') };
  await Promise.all(Object.values(jobs).map((id) => d.waitForJob(id, (r) => r.state === 'running')));
  return jobs;
}

/** Resolves when `fraction` of the stream's requests were acknowledged; throws when the stream stopped first. */
export async function waitForSent(stream: Stream, fraction: number): Promise<void> {
  while (stream.sent() < Math.ceil(stream.total * fraction)) {
    const failure = stream.failure();
    if (failure) throw new Error(`the stream stopped at ${stream.sent()} of ${stream.total} requests: ${failure.message}`);
    await sleep(100);
  }
}

/**
 * Brings a stream to the middle of its flow for a fault: holds it at half its requests until
 * `ready` (e.g. the victim committed a batch; on a loaded machine that can take longer than the
 * whole stream), then lets it go on and returns once two more requests were acknowledged, so the
 * fault that follows hits a stream that is sending, not one that has finished.
 */
export async function midStream(stream: Stream, ready: () => Promise<void>): Promise<void> {
  stream.holdAt(0.5);
  await ready();
  const resumeFrom = stream.sent();
  stream.release();
  while (stream.sent() < Math.min(resumeFrom + 2, stream.total)) {
    const failure = stream.failure();
    if (failure) throw new Error(`the stream stopped at ${stream.sent()} of ${stream.total} requests: ${failure.message}`);
    await sleep(50);
  }
}

/** At the moment of a fault: the stream is still posting, so the fault hits records on their way. */
export function assertSending(t: ExecutionContext, stream: Stream): void {
  t.true(stream.sending(), `the stream was still sending at the fault: ${stream.sent()} of ${stream.total} requests acknowledged${stream.failure() ? ` (failed: ${stream.failure()!.message})` : ''}`);
}

/** The Python driver of a job's current process (the process a graceful stop signals). */
export function driverPid(record: JobRecord): number {
  const pid = Number(readFileSync(record.current!.driverPidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no driver pid in ${record.current!.driverPidFile}`);
  return pid;
}

function signalGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function killChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function waitForReadyLine(child: ChildProcess, timeoutMs: number, logs: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`orchestrator not ready in ${timeoutMs} ms:\n${logs()}`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('"ready":true')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`orchestrator exited with ${code} before it was ready:\n${logs()}`));
    });
  });
}

/**
 * Duplicates on the feedback topic after a fault: a job restarted from its checkpoint re-runs at
 * most the one batch it had not committed, so its repeated feedback ids fit in that batch's
 * output (the restarted run's first batch) and none repeats more than once; a job the fault did
 * not restart repeats none. A job that started over would repeat everything it had emitted.
 */
export function assertReprocessing(t: ExecutionContext, onTopic: ReadonlyMap<string, readonly string[]>, restarted: ReadonlyMap<string, ProgressRun>, untouched: readonly string[]): void {
  for (const [jobId, run] of restarted) {
    const ids = onTopic.get(jobId) ?? [];
    const twice = repeated(ids);
    // The re-run batch comes first; when it emitted nothing it repeats nothing, so the first batch that emitted bounds it.
    const bound = run.batches.find((b) => (b.rows_out ?? 0) > 0)?.rows_out ?? 0;
    t.log(`${jobId}: ${ids.length} messages, ${twice.size} feedback ids repeated, restarted run's first emitting batch: ${bound} rows`);
    t.true(ids.length > 0, `${jobId} emitted feedback`);
    t.true(twice.size <= bound, `${jobId}: at most one batch reprocessed: ${twice.size} of ${new Set(ids).size} feedback ids repeated, the restarted run's first batch emitted ${bound}`);
    t.deepEqual([...twice].filter(([, n]) => n > 2).slice(0, 5), [], `${jobId}: no feedback id more than twice`);
  }
  for (const jobId of untouched) {
    const ids = onTopic.get(jobId) ?? [];
    t.true(ids.length > 0, `${jobId} emitted feedback`);
    t.deepEqual([...repeated(ids)].slice(0, 5), [], `${jobId} (not restarted): every feedback id once on the topic`);
  }
}
