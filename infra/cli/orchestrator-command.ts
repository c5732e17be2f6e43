/**
 * The orchestrator's CLI: `diamond deploy`, `undeploy`, `status`, `logs` — clients of the
 * control API (control-client.ts) — and `diamond serve orchestrator`: the reconcile loop and
 * the control API in one foreground process. Deploy and undeploy change the desired state;
 * the orchestrator acts on its next tick.
 */
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig, parseDurationMs } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { dependenciesOf, startWhenReady } from '../../shared/dependency-wait.ts';
import { createLogger } from '../../shared/logger.ts';
import type { JobStatus } from '../orchestrator/control.ts';
import { startControlApi } from '../orchestrator/control-api.ts';
import { defaultOrchestratorOptions } from '../orchestrator/options.ts';
import { Reconciler } from '../orchestrator/reconciler.ts';
import type { Deployment } from '../orchestrator/state.ts';
import { platformEndpoints } from '../platform/platform-file.ts';
import { abortOnSigint, ControlClient, untilAborted } from './control-client.ts';
import { jsonOption, lineStream, printResult } from './output.ts';

const segment = encodeURIComponent;

interface DeployArgs { usecase: string; variant: string; dir: string | undefined; 'starting-offsets': string | undefined; trigger: string | undefined; from: string | undefined; wait: boolean; 'wait-timeout': string; json: boolean }

export const deployCommand: CommandModule<object, DeployArgs> = {
  command: 'deploy <usecase>',
  describe: 'validate a use case and run it (a changed folder upgrades the running job; nothing else is touched)',
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', default: 'A' })
    .option('dir', { type: 'string', describe: 'the use case folder (default: usecases/<usecase>)' })
    .option('starting-offsets', { type: 'string', choices: ['earliest', 'latest'], describe: 'where to start while the group has no committed offsets' })
    .option('trigger', { type: 'string', describe: "override the manifest's trigger, e.g. 500ms" })
    .option('from', { type: 'string', describe: 'process the input from this time (ISO-8601, or back: 7d, 12h); a running job restarts there' })
    .option('wait', { type: 'boolean', default: false, describe: 'return once the new version runs (exit 1 if it crash-loops)' })
    .option('wait-timeout', { type: 'string', default: '5m', describe: 'how long --wait waits' })
    .option('json', jsonOption)
    .example('$0 deploy spending_spike --variant B --wait', 'run variant B; return once it processes')
    .example('$0 deploy data_quality --from 7d', 'run it over the last 7 days of input, then on'),
  handler: async (args) => {
    const config = loadConfig(process.env);
    const client = ControlClient.fromConfig(config);
    const { deployment } = await client.json<{ deployment: Deployment }>('POST', '/v1/deployments', {
      usecase: args.usecase, variant: args.variant,
      // The orchestrator resolves paths on its side: send an absolute one.
      ...(args.dir ? { dir: resolve(args.dir) } : {}),
      ...(args['starting-offsets'] ? { startingOffsets: args['starting-offsets'] } : {}),
      ...(args.trigger ? { trigger: args.trigger } : {}),
      ...(args.from ? { from: args.from } : {}),
    });
    if (!args.wait) {
      return printResult(args.json, { deployment }, `deployed ${deployment.usecase} variant ${deployment.variant} version ${deployment.version} (generation ${deployment.generation}); the orchestrator starts or upgrades it on its next tick`);
    }
    if (!args.json) process.stderr.write(`deployed ${deployment.usecase} variant ${deployment.variant} version ${deployment.version}; waiting until it runs…\n`);
    const job = await waitUntilRunning(client, deployment, parseDurationMs('--wait-timeout', args['wait-timeout']));
    printResult(args.json, { deployment, job }, `${deployment.usecase} variant ${deployment.variant} version ${deployment.version} is running (pid ${job.pid ?? '?'})`);
  },
};

/** Polls the status until the deployed version runs; crash-looping or the timeout is an error saying where to look. */
async function waitUntilRunning(client: ControlClient, deployment: Deployment, timeoutMs: number): Promise<JobStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: JobStatus | undefined;
  for (;;) {
    const status = await client.json<StatusAnswer>('GET', '/v1/status');
    last = status.jobs.find((job) => job.usecase === deployment.usecase && job.variant === deployment.variant);
    if (last && last.state === 'running' && last.version === deployment.version) return last;
    if (last?.state === 'crash-looping') {
      throw new DiamondError(`${deployment.usecase} variant ${deployment.variant} is crash-looping: ${last.lastError ?? 'no error recorded'}`, {
        code: 'DIAMOND_DEPLOY_WAIT_FAILED', hint: `see \`npx diamond logs ${deployment.usecase} --variant ${deployment.variant}\`; fix it and deploy again`,
      });
    }
    if (Date.now() > deadline) {
      throw new DiamondError(`${deployment.usecase} variant ${deployment.variant} version ${deployment.version} is not running after ${Math.round(timeoutMs / 1000)} s (state ${last?.state ?? 'unknown'}${status.leader ? '' : ', and no orchestrator leads'})`, {
        code: 'DIAMOND_DEPLOY_WAIT_FAILED', hint: 'it stays deployed; watch it with `npx diamond status` / `npx diamond events --follow`',
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export const undeployCommand: CommandModule<object, { usecase: string; variant: string; json: boolean }> = {
  command: 'undeploy <usecase>',
  describe: 'stop a use case variant gracefully (it finishes its batch); other jobs are not touched',
  builder: (y) => y.positional('usecase', { type: 'string', demandOption: true }).option('variant', { type: 'string', default: 'A' }).option('json', jsonOption),
  handler: async ({ usecase, variant, json }) => {
    const config = loadConfig(process.env);
    await ControlClient.fromConfig(config).json('DELETE', `/v1/deployments/${segment(usecase)}/${segment(variant)}`);
    printResult(json, { undeployed: { usecase, variant } }, `undeployed ${usecase} variant ${variant}; the orchestrator stops it after its current batch`);
  },
};

export const replayCommand: CommandModule<object, { usecase: string; variant: string; since: string; json: boolean }> = {
  command: 'replay <usecase>',
  describe: 'reprocess a job\'s input from a point in time (Kafka record time): the job stops after its batch, its group moves back, it starts again',
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', default: 'A' })
    .option('since', { type: 'string', demandOption: true, describe: 'ISO-8601 time, e.g. 2026-11-22T10:00:00Z' })
    .option('json', jsonOption),
  handler: async ({ usecase, variant, since, json }) => {
    const config = loadConfig(process.env);
    const answer = await ControlClient.fromConfig(config).json<{ replay: { job: string; since: string } }>('POST', '/v1/replay', { usecase, variant, since });
    printResult(json, answer, `replaying ${usecase} variant ${variant} from ${answer.replay.since}: the orchestrator stops it after its batch, moves group ${answer.replay.job} back and starts it again (watch with \`npx diamond events --follow\`)`);
  },
};

export const backfillCommand: CommandModule<object, { usecase: string; variant: string; since: string; json: boolean }> = {
  command: 'backfill <usecase>',
  describe: "run a deployed stateless use case over the archived history since a time, then its stream goes on from where the history ends (the same feedback ids: rows are overwritten, never doubled)",
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', default: 'A' })
    .option('since', { type: 'string', demandOption: true, describe: 'ISO-8601 time or a duration back (7d, 12h): the records with event_time at or after it' })
    .option('json', jsonOption),
  handler: async ({ usecase, variant, since, json }) => {
    const config = loadConfig(process.env);
    const answer = await ControlClient.fromConfig(config).json<{ backfill: { job: string; since: string; historyBatch: number; offsets: Record<string, number> } }>('POST', '/v1/backfill', { usecase, variant, since });
    const { backfill } = answer;
    const where = Object.entries(backfill.offsets).map(([partition, offset]) => `${partition}:${offset}`).join(' ');
    printResult(json, answer, `backfilling ${usecase} variant ${variant} over the history since ${backfill.since}: the job stops after its batch, runs over the archive up to its batch ${backfill.historyBatch}, then streams from offsets ${where || '(none yet)'} (watch with \`npx diamond events --follow\`: backfilling, backfilled)`);
  },
};

function formatStatus(rows: readonly JobStatus[]): string {
  if (rows.length === 0) return 'no use case is deployed (deploy one with `npx diamond deploy <usecase>`)\n';
  const header = ['USECASE', 'VARIANT', 'VERSION', 'STATE', 'PID', 'RESTARTS', 'COMMITTED', 'LAG', 'REC/S', 'P50/P99 MS', 'CPU', 'MEM'];
  const lines = rows.map((r) => [
    r.usecase, r.variant, r.version ?? r.deployedVersion ?? '-', r.outages > 0 && r.state === 'backoff' ? `outage (${r.outages})` : r.state, r.pid === null ? '-' : String(r.pid), String(r.restarts),
    Object.entries(r.committedOffsets).map(([p, o]) => `${p}:${o}`).join(',') || '-', r.lag === null ? '?' : String(r.lag),
    r.recordsPerSecond === null ? '-' : String(r.recordsPerSecond), r.latencyMs === null ? '-' : `${r.latencyMs.p50}/${r.latencyMs.p99}`, r.cpu === null ? '-' : r.cpu.toFixed(2), r.memoryMb === null ? '-' : `${r.memoryMb}M`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const table = [header, ...lines].map((l) => l.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  const errors = rows.filter((r) => r.lastError).map((r) => `${r.usecase}/${r.variant} last error: ${r.lastError}`);
  const uis = rows.filter((r) => r.sparkUi).map((r) => `${r.usecase}/${r.variant} Spark UI: ${r.sparkUi}`);
  return [...table, ...errors, ...uis].join('\n') + '\n';
}

interface StatusAnswer {
  readonly leader: string | null;
  readonly jobs: readonly JobStatus[];
  /** Warm spare drivers (absent from an older control API). */
  readonly pool?: { readonly size: number; readonly ready: number; readonly starting: number };
  /** The history archiver as the leader last stored it; null when none ever ran (absent from an older control API). */
  readonly history?: { readonly state: string; readonly pid: number | null; readonly restarts: number; readonly lastError: string | null } | null;
  readonly endpoints: Readonly<Record<string, string>>;
}

/** A job that needs someone: crash-looping, or waiting to restart after a stall. `status` then exits 3. */
const needsAttention = (job: JobStatus): boolean => job.state === 'crash-looping' || (job.state === 'backoff' && (job.lastError ?? '').startsWith('stalled'));

export const statusCommand: CommandModule<object, { json: boolean }> = {
  command: 'status',
  describe: "per job: version, state, pid, restarts, committed offsets and lag; the platform's endpoints. Exits 3 when a job is crash-looping or stalled, or no orchestrator leads",
  builder: (y) => y.option('json', { type: 'boolean', default: false }),
  handler: async ({ json }) => {
    const config = loadConfig(process.env);
    const status = await ControlClient.fromConfig(config).json<StatusAnswer>('GET', '/v1/status');
    if (!status.leader || status.jobs.some(needsAttention)) process.exitCode = 3;
    if (json) return void process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    const warning = status.leader ? '' : 'warning: no orchestrator holds the leader lease, so nothing acts on deployments (start one with `npx diamond serve orchestrator`)\n';
    const endpoints = Object.entries(status.endpoints).map(([name, url]) => `${name.replace(/Url$/, '')} ${url}`).join('  ');
    const pool = status.pool ? `driver pool: ${status.pool.ready} ready, ${status.pool.starting} starting (size ${status.pool.size}${status.pool.size === 0 ? ': off, every start is cold' : ''})\n` : '';
    const history = status.history ? `history archiver: ${status.history.state}${status.history.pid === null ? '' : ` (pid ${status.history.pid})`}, ${status.history.restarts} restarts${status.history.lastError && status.history.restarts > 0 ? `; last error: ${status.history.lastError.split('\n').at(-1) ?? ''}` : ''}\n` : '';
    process.stdout.write(warning + formatStatus(status.jobs) + pool + history + `endpoints: ${endpoints}\n`);
  },
};

export const logsCommand: CommandModule<object, { usecase: string; variant: string; follow: boolean; lines: number; json: boolean }> = {
  command: 'logs <usecase>',
  describe: "print a job's log (the latest process's, kept after it ends); --follow streams it",
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', default: 'A' })
    .option('follow', { alias: 'f', type: 'boolean', default: false })
    .option('lines', { alias: 'n', type: 'number', default: 100 })
    .option('json', { ...jsonOption, describe: 'one {"line": …} object per log line' }),
  handler: async ({ usecase, variant, follow, lines, json }) => {
    const config = loadConfig(process.env);
    const client = ControlClient.fromConfig(config);
    const controller = abortOnSigint();
    const query = new URLSearchParams({ lines: String(lines), ...(follow ? { follow: '1' } : {}) });
    await untilAborted(controller, async () => {
      const decoder = new TextDecoder();
      const output = lineStream(json);
      for await (const chunk of await client.stream(`/v1/jobs/${segment(usecase)}/${segment(variant)}/logs?${query.toString()}`, controller.signal)) {
        output.write(decoder.decode(chunk, { stream: true }));
      }
      output.end();
    });
  },
};

export const serveOrchestratorCommand: CommandModule = {
  command: 'orchestrator',
  describe: 'the orchestrator in the foreground: the reconcile loop over the deployed use cases and the control API',
  handler: async () => {
    const config = loadConfig(process.env);
    const log = createLogger(config, { bindings: { component: 'orchestrator' } });
    const options = defaultOrchestratorOptions(config);
    // Redis (desired state, lease) and Kafka (progress, events) are waited for at start
    // (DIAMOND_DEPENDENCY_WAIT); each attempt builds fresh clients and closes them when it fails.
    const { reconciler, api } = await startWhenReady(dependenciesOf(config, ['redis', 'kafka']), async () => {
      const attempt = new Reconciler(config, options, log);
      try {
        await attempt.connect();
        // One registry: the API's /metrics shows the restarts and batches this reconciler counts.
        return { reconciler: attempt, api: await startControlApi(config, { options, logger: log, endpoints: platformEndpoints(config), metrics: attempt.metrics }) };
      } catch (error) {
        await attempt.stop().catch(() => undefined);
        throw error;
      }
    }, { logger: log, waitMs: config.platform.dependencyWaitMs });
    const stop = (): void => {
      log.info('stopping the orchestrator; jobs keep running and are adopted by the next one');
      Promise.all([reconciler.stop(), api.close()]).catch((error: unknown) => log.error({ err: error }, 'stop failed'));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    log.info({ orchestrator: reconciler.id, tickMs: config.orchestrator.tickMs, controlApi: api.url }, `orchestrator started; control API at ${api.url}`);
    await reconciler.run();
  },
};
