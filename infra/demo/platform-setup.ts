/**
 * Everything the demo sets up before it streams, each step idempotent so a second run
 * reuses what the first made: the platform (`diamond up`), the demo source and customers
 * with their API keys, the 50/50 rollout, the deployments, and jobs that are running with
 * committed offsets (a job deployed for the first time starts at the end of its input, so
 * records sent before it has read once would be skipped).
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { CustomerKeys, formatWeights, RolloutStore, type Weights } from '../../downstream/index.ts';
import { SourceStore, UPSTREAM_KEY_PREFIX } from '../../upstream/index.ts';
import type { ControlClient } from '../cli/control-client.ts';
import type { JobStatus } from '../orchestrator/control.ts';
import type { Deployment } from '../orchestrator/state.ts';
import { codeVersion } from '../orchestrator/version.ts';
import { writeLocalPlatformFile } from '../platform/admin-token.ts';
import { platformUp, type ComponentResult } from '../platform/local-platform.ts';
import { servicesUp, type UpResult } from '../services/local-services.ts';
import type { DemoState } from './demo-state.ts';

export interface PlatformUp {
  readonly services: readonly UpResult[];
  readonly platform: readonly ComponentResult[];
}

/** What `diamond up` does, reporting one line per step. */
export async function bringUpPlatform(config: DiamondConfig, logger: Logger, line: (text: string) => void): Promise<PlatformUp> {
  const services = await servicesUp(config, logger, {
    onStep: (name, message) => line(`  … ${name.padEnd(12)} ${message}`),
    onResult: (r) => line(`  ✔ ${r.name.padEnd(12)} ${r.address.padEnd(40)} ${r.outcome.padEnd(9)} ${r.seconds.toFixed(1).padStart(5)} s`),
  });
  const platform = await platformUp(config, logger, {
    env: process.env,
    onStep: (name, message) => line(`  … ${name.padEnd(12)} ${message}`),
    onResult: (r) => line(`  ✔ ${r.name.padEnd(12)} ${r.healthUrl.padEnd(40)} ${r.outcome.padEnd(9)} ${r.seconds.toFixed(1).padStart(5)} s`),
  });
  await writeLocalPlatformFile(config);
  return { services, platform };
}

export interface DemoKeys {
  readonly sourceKey: string;
  readonly customerKeys: Readonly<Record<string, string>>;
  /** Names of what got a new key this run. */
  readonly created: readonly string[];
}

/** The demo source's key and every customer's, reused while Redis still accepts them. */
export async function ensureKeys(config: DiamondConfig, sourceName: string, customerIds: readonly string[], state: DemoState): Promise<DemoKeys> {
  const upstreamRedis = createRedis(config, { keyPrefix: UPSTREAM_KEY_PREFIX });
  const redis = createRedis(config);
  try {
    const created: string[] = [];
    const sources = new SourceStore(upstreamRedis);
    let sourceKey = state.sourceKey;
    if (!sourceKey || (await sources.authenticate(sourceKey))?.name !== sourceName) {
      // rotateKey also creates a missing source; an existing one (lost state file) gets a new key.
      sourceKey = (await sources.add(sourceName, {}, { rotateKey: true })).apiKey;
      created.push(`source ${sourceName}`);
    }
    const keys = new CustomerKeys(redis);
    const customerKeys: Record<string, string> = {};
    for (const id of customerIds) {
      const known = state.customerKeys[id];
      if (known && (await keys.authenticate(known)) === id) {
        customerKeys[id] = known;
      } else {
        customerKeys[id] = await keys.add(id);
        created.push(`customer ${id}`);
      }
    }
    return { sourceKey, customerKeys, created };
  } finally {
    upstreamRedis.disconnect();
    redis.disconnect();
  }
}

/** Sets the weights unless they are already these; returns the previous ones. */
export async function ensureRollout(config: DiamondConfig, usecase: string, weights: Weights): Promise<{ before: Weights | null; changed: boolean }> {
  const redis = createRedis(config);
  try {
    const store = new RolloutStore(redis);
    const before = await store.get(usecase);
    const changed = !before || formatWeights(before) !== formatWeights(weights);
    if (changed) await store.set(usecase, weights);
    return { before, changed };
  } finally {
    redis.disconnect();
  }
}

export interface StatusAnswer {
  readonly leader: string | null;
  readonly jobs: readonly JobStatus[];
  readonly endpoints: Readonly<Record<string, string>>;
}

export type DeployOutcome = 'deployed' | 'upgraded' | 'unchanged';

/**
 * Deploys a variant unless the same code version is already deployed and not crash-looping
 * (a redeploy would only bump its generation and publish a `deployed` event).
 */
export async function ensureDeployed(client: ControlClient, config: DiamondConfig, usecase: string, variant: string): Promise<{ outcome: DeployOutcome; version: string }> {
  const folder = join(config.projectRoot, 'usecases', usecase);
  const version = codeVersion(folder);
  const status = await client.json<StatusAnswer>('GET', '/v1/status');
  const job = status.jobs.find((j) => j.usecase === usecase && j.variant === variant);
  if (job?.deployedVersion === version && job.state !== 'crash-looping') return { outcome: 'unchanged', version };
  const { deployment } = await client.json<{ deployment: Deployment }>('POST', '/v1/deployments', { usecase, variant });
  return { outcome: job?.deployedVersion ? 'upgraded' : 'deployed', version: deployment.version };
}

export interface JobWait {
  readonly usecase: string;
  readonly variant: string;
}

const ready = (job: JobStatus | undefined): boolean => job?.state === 'running' && Object.keys(job.committedOffsets).length > 0;

/** Polls the control API until every job runs and has committed offsets; fails fast on a crash loop. */
export async function waitForJobs(client: ControlClient, jobs: readonly JobWait[], onProgress: (summary: string) => void, timeoutMs: number): Promise<readonly JobStatus[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await client.json<StatusAnswer>('GET', '/v1/status');
    const rows = jobs.map((want) => ({ want, job: status.jobs.find((j) => j.usecase === want.usecase && j.variant === want.variant) }));
    const looping = rows.find(({ job }) => job?.state === 'crash-looping');
    if (looping) {
      const { usecase, variant } = looping.want;
      throw new DiamondError(`${usecase} variant ${variant} is crash-looping: ${looping.job?.lastError ?? 'no error recorded'}`, {
        code: 'DIAMOND_DEMO_JOB_FAILED',
        hint: `read its log with \`npx diamond logs ${usecase} --variant ${variant}\`, fix it, and run the demo again (it redeploys)`,
      });
    }
    onProgress(rows.map(({ want, job }) => `${want.usecase}/${want.variant} ${ready(job) ? 'running' : job?.state === 'running' ? 'first batch' : (job?.state ?? 'pending')}`).join(', '));
    if (rows.every(({ job }) => ready(job))) return rows.map(({ job }) => job!);
    if (!status.leader) onProgress('no orchestrator holds the leader lease yet');
    if (Date.now() > deadline) {
      const waiting = rows.filter(({ job }) => !ready(job)).map(({ want }) => `${want.usecase}/${want.variant}`);
      throw new DiamondError(`${waiting.join(', ')} did not start within ${Math.round(timeoutMs / 1000)} s`, {
        code: 'DIAMOND_DEMO_JOBS_TIMEOUT',
        hint: 'see `npx diamond status` and `npx diamond logs <usecase> --variant <V>`; on a busy 2-core machine a first start can take minutes: run the demo again (it reuses what runs)',
      });
    }
    await sleep(1000);
  }
}
