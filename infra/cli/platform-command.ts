/**
 * `diamond up [--json]`, `diamond down [--keep-services] [--json]` and `diamond serve
 * platform`: the whole platform on this machine. `up` starts the services, then the
 * supervisor (`serve platform`, detached), which starts the orchestrator, upstream and
 * downstream and restarts any that exits; `up` waits until each serves (each reused when it
 * already does), writes the local platform file with an admin token and prints where
 * everything is. `down` stops the supervisor first (so it restarts nothing), then ingest,
 * the orchestrator, the use case jobs after their batch (kept deployed: the next `up` starts
 * them from their committed offsets), downstream (so the jobs' last feedback is written),
 * then the services unless --keep-services; it prints what it stopped and what is kept.
 */
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { checkRedis } from '../../shared/redis.ts';
import { createLogger } from '../../shared/logger.ts';
import { defaultOrchestratorOptions } from '../orchestrator/options.ts';
import { writeLocalPlatformFile } from '../platform/admin-token.ts';
import { stopJobs, type StoppedJob } from '../platform/job-shutdown.ts';
import { platformUpSupervised, stopComponent, type ComponentResult, type ComponentStop, type SupervisorResult } from '../platform/local-platform.ts';
import { readSupervisedComponents, stopSupervisor, superviseComponents, supervisorPaths } from '../platform/platform-supervisor.ts';
import { servicesDown, servicesUp, type DownResult, type UpResult } from '../services/local-services.ts';
import { servicePaths } from '../services/service.ts';
import { platformEndpoints } from '../platform/platform-file.ts';

const out = (line: string): void => {
  process.stdout.write(line + '\n');
};

const seconds = (since: number): number => Math.round((performance.now() - since) / 100) / 10;

function upLine(name: string, address: string, outcome: string, took: number, pid: number | null): string {
  return `✔ ${name.padEnd(12)} ${address.padEnd(42)} ${outcome.padEnd(9)} ${took.toFixed(1).padStart(5)} s${pid === null ? '' : ` pid ${pid}`}`;
}

export const upCommand: CommandModule<object, { json: boolean }> = {
  command: 'up',
  describe: 'start the whole platform locally: services, orchestrator (control API), upstream (ingest API), downstream (writers, feedback API)',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print a machine-readable summary' }),
  handler: async ({ json }) => {
    const config = loadConfig(process.env);
    const logger = createLogger(config, { fd: 2, bindings: { component: 'platform' } });
    const started = performance.now();
    const services: UpResult[] = await servicesUp(config, logger, {
      onStep: (name, message) => { if (!json) out(`… ${name.padEnd(12)} ${message}`); },
      onResult: (r) => { if (!json) out(upLine(r.name, r.address, r.outcome, r.seconds, r.pid)); },
    });
    const { supervisor, components: platform }: { supervisor: SupervisorResult; components: ComponentResult[] } = await platformUpSupervised(config, logger, {
      env: process.env,
      onStep: (name, message) => { if (!json) out(`… ${name.padEnd(12)} ${message}`); },
      onResult: (r) => { if (!json) out(upLine(r.name, r.healthUrl, r.outcome, r.seconds, r.pid)); },
    });
    const restarted = Object.entries(supervisor.restarts).filter(([, count]) => (count ?? 0) > 0).map(([name, count]) => `${name} ${count}×`);
    if (!json) out(`✔ ${'supervisor'.padEnd(12)} ${`restarts: ${restarted.join(', ') || 'none'}`.padEnd(42)} ${supervisor.outcome.padEnd(9)} ${''.padStart(7)} pid ${supervisor.pid}`);
    const local = await writeLocalPlatformFile(config);
    const endpoints = platformEndpoints(config);
    const took = seconds(started);
    if (json) {
      out(JSON.stringify({ services, platform, supervisor, endpoints, localConfig: local.path, tokenCreated: local.tokenCreated, summaryTokenFile: local.summaryTokenFile, seconds: took }, null, 2));
      return;
    }
    out(`admin token ${local.tokenCreated ? 'created' : 'reused'}: ${local.path} (the CLI uses it when DIAMOND_TOKEN is not set)`);
    out(`runner token ${local.summaryTokenCreated ? 'created' : 'reused'}: ${local.summaryTokenFile} (the feedback API's /v1/summary runs customer_insights.customer_summary with it)`);
    out('');
    out(`Diamond is up in ${took.toFixed(1)} s`);
    out(`  control API   ${endpoints.controlUrl}            (diamond deploy/status/logs/events talk to it)`);
    out(`  ingest API    ${endpoints.ingestUrl}/v1/records   (POST records with a source's API key)`);
    out(`  feedback API  ${endpoints.feedbackUrl}/v1/feedback  (GET with a customer's API key; /v1/summary?since=7d too)`);
    out(`  logs          ${join(config.home, 'logs')}/platform-*.log, jobs under ${join(config.home, 'orchestrator', 'jobs')}`);
    out(`  supervisor    pid ${supervisor.pid} restarts the orchestrator, upstream or downstream when one exits (log: ${supervisor.logFile})`);
    out('Next:');
    out('  npx diamond deploy data_quality   # run a use case');
    out('  npx diamond status                # jobs, offsets, lag and endpoints');
    out('  npx diamond down                  # stop everything (--keep-services leaves Kafka, Cassandra, … running)');
  },
};

function stopLine(name: string, stop: { stopped: boolean; pid: number | null; forced: boolean }): string {
  // Not stopped means: no live process that this home's `up` started (one started otherwise is left alone).
  return `${name.padEnd(12)} ${stop.stopped ? `stopped pid ${stop.pid}${stop.forced ? ' (killed after the grace period)' : ''}` : 'nothing to stop (no process started by diamond up)'}`;
}

/** What survives `down`, as it really is: where each kind of state lives and whether that place is still running. */
function keptLines(config: DiamondConfig, servicesStopped: boolean): string[] {
  const redisDir = servicePaths(config, 'redis').dataDir;
  return [
    `Redis ${config.redis.url}: deployments, job records, admin/viewer tokens, customer and source keys, rollout weights, the cursor secret${servicesStopped ? ` (the local Redis writes an append-only file under ${redisDir}, read back on start)` : ' (still running)'}`,
    `Kafka ${config.kafka.brokers.join(',')}: every topic's records and every consumer group's committed offsets (uc.<usecase>.<variant> for the jobs, the writers' groups)${servicesStopped ? '' : ' (still running)'}`,
    `Cassandra ${config.cassandra.contactPoints.join(',')}: the feedback and history tables`,
    `schema registry ${config.registry.url}: the registered schemas and their ids (its journal is a Kafka topic)`,
  ];
}

interface DownSummary {
  supervisor: { pid: number | null; stopped: boolean; forced: boolean };
  platform: ComponentStop[];
  jobs: StoppedJob[] | null;
  services: DownResult[] | null;
  kept: string[];
  seconds: number;
}

export const downCommand: CommandModule<object, { 'keep-services': boolean; json: boolean }> = {
  command: 'down',
  describe: 'stop the platform `diamond up` started: ingest, orchestrator, use case jobs (after their batch; they stay deployed), downstream, services',
  builder: (y) => y
    .option('keep-services', { type: 'boolean', default: false, describe: 'leave Kafka, the registry, Cassandra, Redis and Spark running' })
    .option('json', { type: 'boolean', default: false, describe: 'print what was stopped as JSON' }),
  handler: async ({ 'keep-services': keepServices, json }) => {
    const config = loadConfig(process.env);
    const logger = createLogger(config, { fd: 2, bindings: { component: 'platform' } });
    const started = performance.now();
    const summary: DownSummary = { supervisor: { pid: null, stopped: false, forced: false }, platform: [], jobs: null, services: null, kept: [], seconds: 0 };
    const stop = async (name: 'upstream' | 'orchestrator' | 'downstream'): Promise<void> => {
      const result = await stopComponent(config, name);
      summary.platform.push(result);
      if (!json) out(stopLine(name, result));
    };

    // First, so that it does not restart what down stops.
    summary.supervisor = await stopSupervisor(config);
    if (!json) out(stopLine('supervisor', summary.supervisor));
    await stop('upstream'); // no new records
    await stop('orchestrator'); // before the jobs: it would restart them
    if (await checkRedis(config).then(() => true, () => false)) {
      summary.jobs = await stopJobs(config, defaultOrchestratorOptions(config), logger, {
        onStopping: (jobs, graceMs) => { if (!json) out(`… jobs         asking ${jobs.join(', ')} to finish their batch (up to ${graceMs / 1000} s)`); },
      });
      if (!json) {
        for (const job of summary.jobs) out(`${'job'.padEnd(12)} ${job.usecase}/${job.variant} stopped pid ${job.pids.join(', ')}${job.forced ? ' (killed after the grace period)' : ''}`);
        if (summary.jobs.length === 0) out(`${'jobs'.padEnd(12)} none running`);
      }
    } else if (!json) {
      out(`${'jobs'.padEnd(12)} skipped: Redis (their state) is not reachable`);
    }
    await stop('downstream'); // last, so the jobs' final feedback is written

    if (!keepServices) {
      summary.services = await servicesDown(config);
      if (!json) for (const result of summary.services) out(stopLine(result.name, result));
    }
    summary.kept = keptLines(config, !keepServices);
    summary.seconds = seconds(started);
    if (json) return out(JSON.stringify(summary, null, 2));
    out(`Diamond is down in ${summary.seconds.toFixed(1)} s${keepServices ? '; Kafka, the registry, Cassandra, Redis and Spark keep running (--keep-services)' : ''}. Kept:`);
    for (const line of summary.kept) out(`  ${line}`);
    out('`npx diamond up` starts it all again; the orchestrator starts the deployed jobs from their committed offsets.');
  },
};

/** `diamond serve platform`: the supervisor `diamond up` starts detached; registered in serve-command.ts. */
export const servePlatformCommand: CommandModule = {
  command: 'platform',
  describe: 'supervise the orchestrator, upstream and downstream in the foreground: start them, restart any that exits (diamond up runs this detached)',
  handler: async () => {
    const config = loadConfig(process.env);
    const logger = createLogger(config, { bindings: { component: 'supervisor' } });
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    logger.info({ pidFile: supervisorPaths(config).pidFile }, 'supervising the platform processes');
    await superviseComponents(config, logger, { components: readSupervisedComponents(config), env: process.env, signal: controller.signal });
  },
};
