/**
 * What the CLI does against the orchestrator's state: validate and deploy a use case
 * folder, undeploy it, and report status (with committed offsets and lag from Kafka).
 * The running orchestrator picks changes up on its next tick.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Admin } from 'kafkajs';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { pythonEnvironment } from '../services/artifacts.ts';
import { pythonProcessEnv } from '../services/spark.ts';
import { readJobOffsets, topicEndOffsets } from './offsets.ts';
import type { EventPublisher } from './reconciler.ts';
import { jobIdFor, lagOf, type Deployment, type DeploymentSettings, type JobState } from './state.ts';
import type { DeploymentStore } from './store.ts';
import { codeVersion } from './version.ts';

const execFileAsync = promisify(execFile);

/** Loads the manifest, checks the variant, and imports the job's code, in the platform's Python. */
const VALIDATE = `
import json, sys
from diamond_sdk.manifest import ManifestError, load_manifest
from diamond_sdk.usercode import UserCodeError, load_user_job
try:
    manifest = load_manifest(sys.argv[1])
    job = load_user_job(manifest.name, sys.argv[2], manifest.variant_file(sys.argv[2]))
except (ManifestError, UserCodeError) as error:
    print(json.dumps({"ok": False, "error": str(error)}))
    sys.exit(0)
print(json.dumps({"ok": True, "name": manifest.name, "variants": sorted(manifest.variants), "kind": job.kind, "stateful": manifest.stateful}))
`;

export interface ValidatedUsecase {
  readonly name: string;
  readonly variants: readonly string[];
  readonly version: string;
  readonly stateful: boolean;
}

/** Refuses (DiamondError saying what to fix) unless the manifest is valid and the code imports. */
export async function validateUsecase(config: DiamondConfig, folder: string, variant: string): Promise<ValidatedUsecase> {
  if (!existsSync(join(folder, 'usecase.yaml'))) {
    throw new DiamondError(`${folder} has no usecase.yaml`, { code: 'DIAMOND_USECASE_UNKNOWN', hint: 'deploy a use case folder (create one with `npx diamond usecase new <name>`)' });
  }
  const { python } = pythonEnvironment(config);
  const { stdout } = await execFileAsync(python, ['-c', VALIDATE, folder, variant], { env: pythonProcessEnv(config), cwd: config.projectRoot, timeout: 60_000 }).catch((cause: unknown) => {
    throw new DiamondError(`could not validate ${folder}`, { code: 'DIAMOND_USECASE_INVALID', hint: 'check that the Python environment is installed (`npx diamond services up spark`)', cause });
  });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { ok: boolean; error?: string; name?: string; variants?: string[]; stateful?: boolean };
  if (!result.ok) throw new DiamondError(`refused to deploy: ${result.error ?? 'invalid use case'}`, { code: 'DIAMOND_USECASE_INVALID', hint: 'fix the use case, check it with `npx diamond usecase test <name>`, then deploy again' });
  return { name: result.name ?? '', variants: result.variants ?? [], version: codeVersion(folder), stateful: result.stateful === true };
}

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
  const deployment = await store.putDeployment({ usecase: request.usecase, variant: request.variant, folder: request.folder, version: validated.version, stateful: validated.stateful, settings: request.settings });
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
