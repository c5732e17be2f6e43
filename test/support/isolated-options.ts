/**
 * Orchestrator options with every Redis key, job id, topic, subject and consumer group unique
 * to one test, so tests share the local services without seeing each other. No history
 * archiver (a Spark driver) unless the test passes `historyArchiveDir`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { uniqueName } from './env.ts';

export function isolatedOrchestratorOptions(prefix: string, overrides: Partial<OrchestratorOptions> = {}): OrchestratorOptions {
  const work = mkdtempSync(join(tmpdir(), `diamond-${prefix}-`));
  return {
    keyPrefix: `${uniqueName(`test-${prefix}`)}:`,
    jobPrefix: `${uniqueName(prefix)}.`,
    topics: {
      input: uniqueName(`${prefix}-records`), output: uniqueName(`${prefix}-feedback`), rejected: uniqueName(`${prefix}-rejected`),
      progress: uniqueName(`${prefix}-progress`), events: uniqueName(`${prefix}-events`), runs: uniqueName(`${prefix}-runs`),
      recordsSubject: uniqueName(`${prefix}-records-value`), feedbackSubject: uniqueName(`${prefix}-feedback-value`),
    },
    progressGroup: uniqueName(`${prefix}-orchestrator`),
    jobsDir: join(work, 'jobs'),
    checkpointsDir: join(work, 'checkpoints'),
    functionsDir: join(work, 'functions'),
    ...overrides,
  };
}
