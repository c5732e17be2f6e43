/**
 * What the CLI does against the orchestrator's state: validate and deploy a use case
 * folder, undeploy it, and report status (with committed offsets and lag from Kafka).
 * The running orchestrator picks changes up on its next tick.
 */
import { join, resolve } from 'node:path';
import type { Admin } from 'kafkajs';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { readJobOffsets, topicEndOffsets } from './offsets.ts';
import type { EventPublisher } from './reconciler.ts';
import { jobIdFor, lagOf, type Deployment, type DeploymentSettings, type JobState } from './state.ts';
import type { DeploymentStore } from './store.ts';
import { validateUsecase } from './validation.ts';

export function resolveUsecaseFolder(config: DiamondConfig, usecase: string, dir?: string): string {
  return resolve(dir ?? join(config.projectRoot, 'usecases', usecase));
}

export interface DeployRequest {
  readonly usecase: string;
  readonly variant: string;
  readonly folder: string;
  readonly settings?: DeploymentSettings;
}

/** Validates, then records the desired state. A changed folder means a new version: an upgrade. */
export async function deployUsecase(config: DiamondConfig, store: DeploymentStore, events: EventPublisher | null, request: DeployRequest, jobPrefix = ''): Promise<Deployment> {
  const validated = await validateUsecase(config, request.folder, request.variant);
  if (validated.name !== request.usecase) {
    throw new DiamondError(`${request.folder}/usecase.yaml names "${validated.name}", not "${request.usecase}"`, { code: 'DIAMOND_USECASE_INVALID', hint: 'make the manifest name equal the folder name' });
  }
  const deployment = await store.putDeployment({
    usecase: request.usecase, variant: request.variant, folder: request.folder, version: validated.version, stateful: validated.stateful,
    settings: request.settings, resources: validated.resources, pythonEnv: validated.pythonEnv,
  });
  await events?.publish('deployed', { job: jobIdFor(request.usecase, request.variant, jobPrefix), usecase: request.usecase, variant: request.variant, version: deployment.version, generation: deployment.generation });
  return deployment;
}

export async function undeployUsecase(store: DeploymentStore, events: EventPublisher | null, usecase: string, variant: string, jobPrefix = ''): Promise<boolean> {
  const removed = await store.removeDeployment(usecase, variant);
  if (removed) await events?.publish('undeployed', { job: jobIdFor(usecase, variant, jobPrefix), usecase, variant });
  return removed;
}

export interface JobStatus {
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  readonly deployedVersion: string | null;
  readonly version: string | null;
  readonly state: JobState | 'pending';
  readonly pid: number | null;
  readonly restarts: number;
  readonly committedOffsets: Record<string, number>;
  readonly lag: number | null;
  readonly lastError: string | null;
  readonly logFile: string | null;
}

export async function jobStatuses(store: DeploymentStore, admin: Admin, inputTopic: string, jobPrefix = ''): Promise<JobStatus[]> {
  const deployments = await store.listDeployments();
  const records = new Map((await store.listJobs()).map((r) => [r.jobId, r]));
  const ends = await topicEndOffsets(admin, inputTopic).catch(() => null);
  const jobIds = new Set([...deployments.map((d) => jobIdFor(d.usecase, d.variant, jobPrefix)), ...records.keys()]);
  const rows: JobStatus[] = [];
  for (const job of [...jobIds].sort()) {
    const record = records.get(job);
    const deployment = deployments.find((d) => jobIdFor(d.usecase, d.variant, jobPrefix) === job);
    const committed = Object.fromEntries(Object.entries(await readJobOffsets(admin, job, inputTopic).catch(() => ({}))).filter(([, offset]) => offset >= 0));
    rows.push({
      job,
      usecase: record?.usecase ?? deployment?.usecase ?? '',
      variant: record?.variant ?? deployment?.variant ?? '',
      deployedVersion: deployment?.version ?? null,
      version: record?.current?.version ?? null,
      state: record?.state ?? 'pending',
      pid: record?.current?.groupPid ?? null,
      restarts: record?.restarts ?? 0,
      committedOffsets: committed,
      lag: ends ? lagOf(committed, ends) : null,
      lastError: record?.lastError ?? null,
      logFile: record?.lastLogFile ?? null,
    });
  }
  return rows;
}
