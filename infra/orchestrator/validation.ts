/**
 * Validation before anything starts, in the Python environment the job will run in (the use
 * case's own, built here from its requirements.txt, so a deploy whose requirements cannot be
 * installed is refused and later launches are instant): the manifest is valid, the variant
 * exists and its code imports, the SDK's Feedback output fits the Feedback schema in the
 * registry, and the variant's output on its sample.jsonl has the Feedback columns
 * (usecases/sdk/diamond_sdk/_runtime/validate.py). A refusal is a DiamondError saying what to fix.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { parseMemoryMb, type DiamondConfig } from '../../shared/config.ts';
import { DiamondError, ServiceUnavailableError } from '../../shared/errors.ts';
import { Subjects } from '../../shared/schemas.ts';
import { connectorJars, pythonEnvironment } from '../../shared/runtime-paths.ts';
import { tenantEnv, withPrivateHome } from '../../shared/tenant-env.ts';
import { writeJobConnections } from '../../shared/job-connections.ts';
import type { DeclaredResources } from './state.ts';
import { assertJobUserCanRead, defaultTenantDirs, jobUser, openPathTo, restrictPlatformHome } from './job-user.ts';
import { asUser, prepareUsecaseEnv } from './usecase-env.ts';
import { codeVersion } from './version.ts';

const execFileAsync = promisify(execFile);

export interface ValidationOptions {
  /** Registry subject of the Feedback contract (default: the feedback topic's). */
  readonly feedbackSubject?: string;
  /** Run the variant on its sample.jsonl (default true). */
  readonly checkSample?: boolean;
  readonly onStep?: (message: string) => void;
}

/** What was checked and how long it took, for logs and measurements. */
export interface ValidationReport {
  /** Registered Feedback version checked against; null = none registered yet (the first job registers the SDK's). */
  readonly registryVersion: number | null;
  /** 'checked' (on sample.jsonl), 'cached' (this code passed before), or 'none' (no sample.jsonl or not asked). */
  readonly sample: 'checked' | 'cached' | 'none';
  readonly envMs: number;
  readonly pythonMs: number;
  readonly totalMs: number;
}

export interface ValidatedUsecase {
  readonly name: string;
  readonly variants: readonly string[];
  readonly version: string;
  readonly stateful: boolean;
  readonly resources: DeclaredResources;
  /** The use case's own Python environment; null = the platform's. */
  readonly pythonEnv: string | null;
  readonly report: ValidationReport;
}

interface PythonVerdict {
  readonly ok: boolean;
  readonly problem?: 'manifest' | 'user_code' | 'output' | 'feedback_schema' | 'registry';
  readonly error?: string;
  readonly column?: string;
  readonly name?: string;
  readonly variants?: string[];
  readonly stateful?: boolean;
  readonly cores?: number;
  readonly memory?: string;
  readonly registry?: { subject: string; version: number | null } | null;
  readonly sample?: unknown;
}

/** Refuses (DiamondError saying what to fix) unless every check passes. */
export async function validateUsecase(config: DiamondConfig, folder: string, variant: string, options: ValidationOptions = {}): Promise<ValidatedUsecase> {
  const started = performance.now();
  if (!existsSync(join(folder, 'usecase.yaml'))) {
    throw new DiamondError(`${folder} has no usecase.yaml`, { code: 'DIAMOND_USECASE_UNKNOWN', hint: 'deploy a use case folder (create one with `npx diamond usecase new <name>`)' });
  }
  const user = jobUser(config);
  if (user) {
    restrictPlatformHome(config.home, defaultTenantDirs(config));
    // The job user must reach the folder it runs (a use case copied under a 0700 temp folder
    // is common): the folders above it become crossable, never listable.
    for (const home of openPathTo(folder, user)) options.onStep?.(`opened the home folder ${home} for crossing (o+x) so the job user ${user.name} can reach ${folder}`);
  }
  const env = await prepareUsecaseEnv(config, folder, options.onStep);
  const envDone = performance.now();
  const python = env?.python ?? pythonEnvironment(config).python;
  if (user) assertJobUserCanRead(user, [python, join(folder, 'usecase.yaml'), join(config.projectRoot, 'usecases', 'sdk', 'diamond_sdk', '__init__.py'), ...connectorJars(config).slice(0, 1)]);
  const feedbackSubject = options.feedbackSubject ?? Subjects.Feedback;

  // A variant whose code, sample, SDK and environment passed the sample check before passes it again.
  const passed = sampleCheckMarker(config, folder, variant, python);
  const cached = options.checkSample !== false && existsSync(passed);
  const skipSample = options.checkSample === false || cached;
  const args = ['-m', 'diamond_sdk._runtime.validate', folder, variant, '--registry-url', config.registry.url, '--feedback-subject', feedbackSubject, ...(skipSample ? ['--no-sample'] : [])];
  // The use case's code is imported and run here: in a child with a clean environment (no
  // token, no Redis URL) and an empty home, as the job user when we are root, never in the
  // orchestrator's process.
  // The registry's credentials, if any, reach it in a 0600 file in that home (shared/job-connections.ts).
  const { stdout } = await withPrivateHome((home) => execFileAsync(python, [...args, ...writeJobConnections(config, join(home, 'connections.json'), user)], { env: validationEnv(config, python, home), cwd: user ? home : config.projectRoot, timeout: 180_000, maxBuffer: 16 * 2 ** 20, ...asUser(user) }), user).catch((cause: unknown) => {
    throw new DiamondError(`could not validate ${folder}`, { code: 'DIAMOND_USECASE_INVALID', hint: 'check that the Python environment is installed (`npx diamond services up spark`)', cause });
  });
  const verdict = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as PythonVerdict;
  if (!verdict.ok) throw refusal(config, basename(folder), verdict, feedbackSubject);
  if (verdict.sample) {
    mkdirSync(join(passed, '..'), { recursive: true });
    writeFileSync(passed, JSON.stringify(verdict.sample) + '\n');
  }
  const done = performance.now();
  return {
    name: verdict.name ?? '', variants: verdict.variants ?? [], version: codeVersion(folder), stateful: verdict.stateful === true,
    resources: { cores: verdict.cores ?? 1, memoryMb: parseMemoryMb('resources.memory', verdict.memory ?? '1g') },
    pythonEnv: env?.dir ?? null,
    report: {
      registryVersion: verdict.registry?.version ?? null,
      sample: verdict.sample ? 'checked' : cached ? 'cached' : 'none',
      envMs: Math.round(envDone - started), pythonMs: Math.round(done - envDone), totalMs: Math.round(done - started),
    },
  };
}

/** What validate.py needs (the SDK importable, Java and the connector jars for its local Spark), nothing of ours. */
function validationEnv(config: DiamondConfig, python: string, home: string): Record<string, string> {
  return tenantEnv({
    HOME: home, PYTHONPATH: join(config.projectRoot, 'usecases', 'sdk'), JAVA_HOME: config.javaHome,
    PYSPARK_PYTHON: python, DIAMOND_SPARK_JARS: connectorJars(config).join(','), SPARK_LOCAL_IP: '127.0.0.1',
  });
}

function refusal(config: DiamondConfig, usecase: string, verdict: PythonVerdict, feedbackSubject: string): DiamondError {
  const message = `refused to deploy: ${verdict.error ?? 'invalid use case'}`;
  switch (verdict.problem) {
    case 'output':
      return new DiamondError(message, {
        code: 'DIAMOND_USECASE_OUTPUT_INVALID',
        hint: `return column '${verdict.column ?? '?'}' as the Feedback contract says (customer_id, kind, severity, message, event_time; optional score, details, record_ids, key: docs/DATA_SCIENTISTS.md §2), check with \`npx diamond usecase test ${usecase}\`, then deploy again`,
      });
    case 'feedback_schema':
      return new DiamondError(message, {
        code: 'DIAMOND_FEEDBACK_SCHEMA_INCOMPATIBLE',
        hint: `the Feedback schema registered under ${feedbackSubject} and the SDK's (shared/schemas/feedback.avsc) disagree on '${verdict.column ?? '?'}': register a version the SDK can write (new fields need defaults) or update the SDK's contract`,
      });
    case 'registry':
      return new ServiceUnavailableError('schema registry', config.registry.url, { cause: new Error(verdict.error) });
    default:
      return new DiamondError(message, { code: 'DIAMOND_USECASE_INVALID', hint: `fix the use case, check it with \`npx diamond usecase test ${usecase}\`, then deploy again` });
  }
}

/** Keyed by everything the sample check's outcome depends on. */
function sampleCheckMarker(config: DiamondConfig, folder: string, variant: string, python: string): string {
  const sample = join(folder, 'sample.jsonl');
  const key = createHash('sha256')
    .update(JSON.stringify([codeVersion(folder), variant, codeVersion(join(config.projectRoot, 'usecases', 'sdk', 'diamond_sdk')), python]))
    .update(existsSync(sample) ? readFileSync(sample) : '')
    .digest('hex')
    .slice(0, 24);
  return join(config.home, 'orchestrator', 'validated', key);
}
