/**
 * Where the orchestrator keeps and finds things. One object, built from the config by
 * `defaultOrchestratorOptions` and passed down to the reconciler, the control API and the
 * launchers' job shutdown; tests and benches pass isolated names instead.
 */
import { join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { Topics } from '../../shared/topics.ts';
import { JobLauncher, type JobTopics } from './launcher.ts';

/** Every name injectable for isolated tests. */
export interface OrchestratorOptions {
  /** Redis key prefix of deployments, jobs and the lease. */
  readonly keyPrefix: string;
  /** Prefix of job ids and thus of consumer groups (`<prefix>uc.<usecase>.<variant>`). */
  readonly jobPrefix: string;
  /** `runs`: lifecycle of function runs; default diamond.runs. */
  readonly topics: JobTopics & { readonly events: string; readonly runs?: string };
  /** Consumer group of the orchestrator's own progress consumer. */
  readonly progressGroup: string;
  readonly jobsDir: string;
  readonly checkpointsDir: string;
  /** Function sessions' files (session, pid, secret, log); default <home>/orchestrator/functions. */
  readonly functionsDir?: string;
  /**
   * The history archiver's folder (its launch files and checkpoint); absent = no archiver,
   * whatever DIAMOND_HISTORY_ARCHIVE says (tests that do not ask for one: it is a Spark driver).
   */
  readonly historyArchiveDir?: string;
  /** The feedback writer's consumer group (its lag on the output topic is shown); default FEEDBACK_WRITER_GROUP. */
  readonly writerGroup?: string;
}

export function defaultOrchestratorOptions(config: DiamondConfig): OrchestratorOptions {
  const dirs = JobLauncher.directories(config);
  return {
    keyPrefix: 'diamond:orchestrator:',
    jobPrefix: '',
    topics: { input: Topics.normalizedRecords, output: Topics.rawFeedback, rejected: Topics.rejectedFeedback, progress: Topics.progress, events: Topics.events, runs: Topics.runs },
    progressGroup: config.orchestrator.progressGroup,
    jobsDir: dirs.jobs,
    checkpointsDir: dirs.checkpoints,
    functionsDir: functionsDirOf(config),
    historyArchiveDir: historyArchiveDirOf(config),
  };
}

/** Outside the jobs folder too, for the same reason. */
export function historyArchiveDirOf(config: Pick<DiamondConfig, 'home'>): string {
  return join(config.home, 'orchestrator', 'history');
}

/** Outside the jobs folder on purpose: the reconciler reaps marked processes there that no job record names. */
export function functionsDirOf(config: Pick<DiamondConfig, 'home'>): string {
  return join(config.home, 'orchestrator', 'functions');
}
