/**
 * An isolated orchestrator for integration tests: unique topics, subjects, Redis prefix,
 * job-id prefix (so unique consumer groups) and directories; a fast config (small tick and
 * backoff); and a teardown that kills every process group it started and removes its keys.
 */
import type { Admin } from 'kafkajs';
import { Redis } from 'ioredis';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { CustomerRecord } from '../../shared/schemas.ts';
import type { OrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { JobLauncher } from '../../infra/orchestrator/launcher.ts';
import { Reconciler } from '../../infra/orchestrator/reconciler.ts';
import { signalAll } from '../../shared/process-group.ts';
import type { JobRecord } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { createRedis, redisPassword } from '../../shared/redis.ts';
import { TEST_USECASE_ROOTS, testKafka } from './env.ts';
import { isolatedOrchestratorOptions } from './isolated-options.ts';
import { ensureTopics } from '../../shared/kafka.ts';

export interface TestOrchestrator {
  readonly config: DiamondConfig;
  readonly options: OrchestratorOptions;
  /** The running orchestrator (a new one after `restartOrchestrator`). */
  readonly reconciler: Reconciler;
  readonly admin: Admin;
  /** Stops the orchestrator without touching its jobs and starts a fresh one (same state). */
  restartOrchestrator(): Promise<Reconciler>;
  /** Another orchestrator on the same state, not started; the caller stops it. */
  secondOrchestrator(): Reconciler;
  /** Encodes and produces records to the input topic. */
  produce(records: CustomerRecord[]): Promise<void>;
  /** Polls the job record until `done` holds. */
  waitForJob(jobId: string, done: (record: JobRecord) => boolean, timeoutMs?: number): Promise<JobRecord>;
  /** Stops the loop, kills every process group of every job record, removes the keys. */
  teardown(): Promise<void>;
}

/**
 * Runs one setup step; a failure says which step of which test orchestrator failed (a bare
 * kafkajs or registry error, seen once in CI as "Rejected promise returned by test", did not).
 */
async function step<T>(prefix: string, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new Error(`test orchestrator ${prefix}: ${what} failed: ${errorMessage(error)}`, { cause: error });
  }
}

export async function startTestOrchestrator(prefix: string, env: Record<string, string> = {}, overrides: Partial<OrchestratorOptions> = {}): Promise<TestOrchestrator> {
  const config = loadConfig({
    DIAMOND_USECASE_ROOTS: TEST_USECASE_ROOTS,
    // No warm spare unless a test asks for one (orchestrator-pool, the e2e platform): a spare
    // is a Spark driver, and most orchestrator tests are about something else.
    DIAMOND_POOL_SIZE: '0',
    ...process.env,
    DIAMOND_ORCHESTRATOR_TICK: '300ms', DIAMOND_ORCHESTRATOR_BACKOFF: '200ms', DIAMOND_ORCHESTRATOR_STARTING_OFFSETS: 'earliest',
    DIAMOND_ORCHESTRATOR_STOP_GRACE: '30s', DIAMOND_LOG_LEVEL: process.env['DIAMOND_LOG_LEVEL'] ?? 'warn',
    ...env,
  });
  const options = isolatedOrchestratorOptions(prefix, overrides);
  const kafka = testKafka();
  const admin = kafka.admin();
  await step(prefix, `creating the topics ${options.topics.input}, ${options.topics.output}, ${options.topics.rejected}`, async () => {
    await admin.connect();
    await ensureTopics(admin, [
      { topic: options.topics.input, partitions: 2 }, { topic: options.topics.output, partitions: 2 },
      { topic: options.topics.rejected, partitions: 1 },
    ]);
  });
  const registry = createRegistry(config);
  const schemaId = await step(prefix, `registering CustomerRecord under ${options.topics.recordsSubject}`, () => registerContract(registry, 'CustomerRecord', options.topics.recordsSubject));
  const newReconciler = (): Reconciler => new Reconciler(config, options, createLogger(config, { fd: 2, bindings: { component: 'orchestrator', test: prefix } }));
  let reconciler = newReconciler();
  await step(prefix, 'connecting the orchestrator to Redis and Kafka', () => reconciler.connect());
  let loop = reconciler.run();

  const producer = kafka.producer({ idempotent: true });
  await step(prefix, 'connecting the test producer', () => producer.connect());
  const redis = new Redis(config.redis.url, { password: redisPassword(config) });

  return {
    config, options, admin,
    get reconciler() { return reconciler; },
    restartOrchestrator: async () => {
      await reconciler.stop();
      await loop;
      reconciler = newReconciler();
      await reconciler.connect();
      loop = reconciler.run();
      return reconciler;
    },
    secondOrchestrator: newReconciler,
    produce: async (records) => {
      const messages = await Promise.all(records.map(async (r) => ({ key: r.customer_id, value: await registry.encode(schemaId, r) })));
      await producer.send({ topic: options.topics.input, acks: -1, messages });
    },
    waitForJob: async (jobId, done, timeoutMs = 180_000) => {
      const deadline = Date.now() + timeoutMs;
      let last: JobRecord | null = null;
      while (Date.now() < deadline) {
        last = await step(prefix, `reading the record of ${jobId}`, () => reconciler.store.getJob(jobId));
        if (last && done(last)) return last;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      throw new Error(`job ${jobId} did not reach the expected state in ${timeoutMs} ms; last record: ${JSON.stringify(last)}`);
    },
    teardown: async () => {
      await reconciler.stop();
      await loop;
      const store = new DeploymentStore(createRedis(config, { keyPrefix: options.keyPrefix }));
      const jobs = await store.listJobs().catch(() => []);
      await store.close();
      for (const record of jobs) {
        for (const job of [record.current, record.next, ...record.retiring.map((r) => r.job)]) {
          if (!job) continue;
          try {
            process.kill(-job.groupPid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      // And whatever else carries one of this orchestrator's launch markers (a failed test may leave orphans).
      const strays = new JobLauncher(config, options.topics, { jobs: options.jobsDir, checkpoints: options.checkpointsDir }).jobProcesses();
      signalAll(strays.map((p) => p.pgid), strays.map((p) => p.pid), 'SIGKILL');
      const keys = await redis.keys(`${options.keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    },
  };
}

export function customerRecord(record_id: string, customer_id: string, fields: Partial<CustomerRecord> = {}): CustomerRecord {
  const at = Date.UTC(2026, 10, 1, 10, 10);
  return { record_id, customer_id, source: 'test', event_time: at, type: 'purchase', amount: 10, currency: 'EUR', attributes: {}, ingested_at: at, ...fields };
}
