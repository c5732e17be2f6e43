/**
 * The orchestrator's CLI: `diamond deploy`, `undeploy`, `status`, `logs`, and
 * `diamond serve orchestrator` (the reconcile loop in the foreground). Deploy and undeploy
 * change the desired state in Redis; the running orchestrator acts on its next tick.
 */
import { createReadStream, existsSync, statSync, watchFile, unwatchFile } from 'node:fs';
import type { Admin } from 'kafkajs';
import type { CommandModule } from 'yargs';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { createKafka } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { deployUsecase, jobStatuses, resolveUsecaseFolder, undeployUsecase, type JobStatus } from '../orchestrator/control.ts';
import { defaultOrchestratorOptions, EventPublisher, Reconciler } from '../orchestrator/reconciler.ts';
import { jobIdFor } from '../orchestrator/state.ts';
import { DeploymentStore } from '../orchestrator/store.ts';
import { tailFile } from '../services/processes.ts';

/** Opens the store and an event publisher, runs `work`, closes both. */
async function withControl<T>(config: DiamondConfig, work: (store: DeploymentStore, events: EventPublisher, admin: Admin) => Promise<T>): Promise<T> {
  const options = defaultOrchestratorOptions(config);
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-cli`, retries: 1 });
  const producer = kafka.producer();
  const admin = kafka.admin();
  await redis.connect();
  await Promise.all([producer.connect(), admin.connect()]);
  try {
    return await work(new DeploymentStore(redis), new EventPublisher(producer, options.topics.events), admin);
  } finally {
    await Promise.all([producer.disconnect(), admin.disconnect()]);
    redis.disconnect();
  }
}

interface DeployArgs { usecase: string; variant: string; dir: string | undefined; 'starting-offsets': string | undefined; trigger: string | undefined }

export const deployCommand: CommandModule<object, DeployArgs> = {
  command: 'deploy <usecase>',
  describe: 'validate a use case and run it (a changed folder upgrades the running job; nothing else is touched)',
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', default: 'A' })
    .option('dir', { type: 'string', describe: 'the use case folder (default: usecases/<usecase>)' })
    .option('starting-offsets', { type: 'string', choices: ['earliest', 'latest'], describe: 'where to start while the group has no committed offsets' })
    .option('trigger', { type: 'string', describe: "override the manifest's trigger, e.g. 500ms" }),
  handler: async (args) => {
    const config = loadConfig(process.env);
    const folder = resolveUsecaseFolder(config, args.usecase, args.dir);
    const settings = { ...(args['starting-offsets'] ? { startingOffsets: args['starting-offsets'] as 'earliest' | 'latest' } : {}), ...(args.trigger ? { trigger: args.trigger } : {}) };
    const deployment = await withControl(config, (store, events) => deployUsecase(config, store, events, { usecase: args.usecase, variant: args.variant, folder, settings }));
    process.stdout.write(`deployed ${deployment.usecase} variant ${deployment.variant} version ${deployment.version} (generation ${deployment.generation}); the orchestrator starts or upgrades it on its next tick\n`);
  },
};

export const undeployCommand: CommandModule<object, { usecase: string; variant: string }> = {
  command: 'undeploy <usecase>',
  describe: 'stop a use case variant gracefully (it finishes its batch); other jobs are not touched',
  builder: (y) => y.positional('usecase', { type: 'string', demandOption: true }).option('variant', { type: 'string', default: 'A' }),
  handler: async ({ usecase, variant }) => {
    const config = loadConfig(process.env);
    const removed = await withControl(config, (store, events) => undeployUsecase(store, events, usecase, variant));
    if (!removed) throw new DiamondError(`${usecase} variant ${variant} is not deployed`, { code: 'DIAMOND_NOT_DEPLOYED', hint: 'see what runs with `npx diamond status`' });
    process.stdout.write(`undeployed ${usecase} variant ${variant}; the orchestrator stops it after its current batch\n`);
  },
};

function formatStatus(rows: readonly JobStatus[]): string {
  if (rows.length === 0) return 'no use case is deployed (deploy one with `npx diamond deploy <usecase>`)\n';
  const header = ['USECASE', 'VARIANT', 'VERSION', 'STATE', 'PID', 'RESTARTS', 'COMMITTED', 'LAG'];
  const lines = rows.map((r) => [
    r.usecase, r.variant, r.version ?? r.deployedVersion ?? '-', r.state, r.pid === null ? '-' : String(r.pid), String(r.restarts),
    Object.entries(r.committedOffsets).map(([p, o]) => `${p}:${o}`).join(',') || '-', r.lag === null ? '?' : String(r.lag),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const table = [header, ...lines].map((l) => l.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  const errors = rows.filter((r) => r.lastError).map((r) => `${r.usecase}/${r.variant} last error: ${r.lastError}`);
  return [...table, ...errors].join('\n') + '\n';
}

export const statusCommand: CommandModule<object, { json: boolean }> = {
  command: 'status',
  describe: 'per job: version, state, pid, restarts, committed offsets and lag',
  builder: (y) => y.option('json', { type: 'boolean', default: false }),
  handler: async ({ json }) => {
    const config = loadConfig(process.env);
    const options = defaultOrchestratorOptions(config);
    const rows = await withControl(config, async (store, _events, admin) => ({
      leader: await store.leaseHolder(),
      jobs: await jobStatuses(store, admin, options.topics.input),
    }));
    if (json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else process.stdout.write((rows.leader ? '' : 'warning: no orchestrator is running (start one with `npx diamond serve orchestrator`)\n') + formatStatus(rows.jobs));
  },
};

export const logsCommand: CommandModule<object, { usecase: string; variant: string; follow: boolean; lines: number }> = {
  command: 'logs <usecase>',
  describe: "print a job's log (the latest process's, kept after it ends)",
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', default: 'A' })
    .option('follow', { alias: 'f', type: 'boolean', default: false })
    .option('lines', { alias: 'n', type: 'number', default: 100 }),
  handler: async ({ usecase, variant, follow, lines }) => {
    const config = loadConfig(process.env);
    const options = defaultOrchestratorOptions(config);
    const redis = createRedis(config, { keyPrefix: options.keyPrefix });
    await redis.connect();
    const record = await new DeploymentStore(redis).getJob(jobIdFor(usecase, variant, options.jobPrefix)).finally(() => redis.disconnect());
    const logFile = record?.lastLogFile;
    if (!logFile || !existsSync(logFile)) throw new DiamondError(`no log for ${usecase} variant ${variant}`, { code: 'DIAMOND_NO_LOG', hint: 'it has not been started yet; see `npx diamond status`' });
    process.stdout.write(tailFile(logFile, lines) + '\n');
    if (!follow) return;
    let position = statSync(logFile).size;
    await new Promise<void>((resolve) => {
      watchFile(logFile, { interval: 500 }, (current) => {
        if (current.size <= position) return;
        createReadStream(logFile, { start: position, end: current.size - 1 }).pipe(process.stdout, { end: false });
        position = current.size;
      });
      process.once('SIGINT', () => { unwatchFile(logFile); resolve(); });
    });
  },
};

export const serveOrchestratorCommand: CommandModule = {
  command: 'orchestrator',
  describe: 'the orchestrator (reconcile loop over the deployed use cases) in the foreground',
  handler: async () => {
    const config = loadConfig(process.env);
    const log = createLogger(config, { bindings: { component: 'orchestrator' } });
    const reconciler = new Reconciler(config, defaultOrchestratorOptions(config), log);
    await reconciler.connect();
    const stop = (): void => {
      log.info('stopping the orchestrator; jobs keep running and are adopted by the next one');
      reconciler.stop().catch((error: unknown) => log.error({ err: error }, 'stop failed'));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    log.info({ orchestrator: reconciler.id, tickMs: config.orchestrator.tickMs }, 'orchestrator started');
    await reconciler.run();
  },
};
