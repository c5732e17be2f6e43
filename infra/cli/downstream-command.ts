/**
 * Downstream commands:
 *   diamond rollout <usecase> [A=90,B=10]   set (or show) the A/B weights; applies to the next batch; publishes rollout-changed
 *   diamond customer add <id>               create an API key for a customer (printed once)
 *   diamond ab <usecase> [--days 7] [--json] compare the variants' output
 *   diamond serve downstream [--parts …]    (registered through serve-command.ts)
 */
import type { Argv, CommandModule } from 'yargs';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { dependenciesOf, startWhenReady } from '../../shared/dependency-wait.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { type AbComparison, type AbReport, bucketRanges, CustomerKeys, DOWNSTREAM_DEPENDENCIES, DOWNSTREAM_PARTS, type DownstreamPart, formatWeights, parseWeights, RolloutStore, startDownstream, type Weights } from '../../downstream/index.ts';
import { abReportPath, feedbackApiClient } from '../../shared/http/feedback-client.ts';
import { controlToken } from './control-client.ts';
import { customerList, customerRevoke, customerRotate } from './key-commands.ts';
import { jsonOption, printResult } from './output.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DiamondError, ServiceUnavailableError } from '../../shared/errors.ts';
import { createKafka, ensureTopics } from '../../shared/kafka.ts';
import { changeRollout } from '../orchestrator/control.ts';
import { EventPublisher } from '../orchestrator/events.ts';
import { defaultOrchestratorOptions } from '../orchestrator/options.ts';
import { DeploymentStore } from '../orchestrator/store.ts';

const out = (line: string): void => {
  process.stdout.write(line + '\n');
};

async function withRedis<T>(config: DiamondConfig, use: (redis: ReturnType<typeof createRedis>) => Promise<T>): Promise<T> {
  const redis = createRedis(config);
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/**
 * Weights for a use case nobody can run would be stored and never used: a use case must have
 * a folder under a use case root or a deployment (a variant may be weighted before it is deployed).
 */
async function assertKnownUsecase(config: DiamondConfig, usecase: string): Promise<void> {
  if (config.usecases.roots.some((root) => existsSync(join(root, usecase, 'usecase.yaml')))) return;
  const store = new DeploymentStore(createRedis(config, { keyPrefix: defaultOrchestratorOptions(config).keyPrefix }));
  try {
    if ((await store.listDeployments()).some((d) => d.usecase === usecase)) return;
  } finally {
    await store.close();
  }
  throw new DiamondError(`no use case ${usecase}: no usecase.yaml under ${config.usecases.roots.join(', ')} and nothing deployed by that name`, {
    code: 'DIAMOND_USECASE_UNKNOWN', hint: 'check the name (`npx diamond status` lists the deployed ones)',
  });
}

/**
 * The orchestrator's lifecycle publisher, for a command that changes what the platform does:
 * its events go where the dashboard and `diamond events` read them.
 */
async function withEvents<T>(config: DiamondConfig, use: (events: EventPublisher, jobPrefix: string) => Promise<T>): Promise<T> {
  const options = defaultOrchestratorOptions(config);
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-cli`, retries: 2 });
  const admin = kafka.admin();
  const producer = kafka.producer();
  try {
    await Promise.all([admin.connect(), producer.connect()]);
    await ensureTopics(admin, [{ topic: options.topics.events, partitions: 1 }]);
  } catch (cause) {
    await Promise.all([admin.disconnect(), producer.disconnect()]).catch(() => undefined);
    throw new ServiceUnavailableError('Kafka', config.kafka.brokers.join(','), { cause, hint: `nothing was changed: the change is published on ${options.topics.events}; start Kafka (\`npx diamond services up\`) and run it again` });
  }
  try {
    return await use(new EventPublisher(producer, options.topics.events), options.jobPrefix);
  } finally {
    await Promise.all([admin.disconnect(), producer.disconnect()]).catch(() => undefined);
  }
}

const describeRanges = (weights: Weights): string =>
  bucketRanges(weights).map((r) => `${r.variant} ${r.to > r.from ? `buckets ${r.from}–${r.to - 1}` : 'no buckets'}`).join(', ');

export const rolloutCommand: CommandModule<object, { usecase: string; weights: string | undefined; json: boolean }> = {
  command: 'rollout <usecase> [weights]',
  describe: 'set the A/B weights of a use case (e.g. A=90,B=10) without restarting anything; without weights, show them',
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .positional('weights', { type: 'string', describe: 'VARIANT=WEIGHT pairs, e.g. A=90,B=10' })
    .option('json', { type: 'boolean', default: false }),
  handler: async ({ usecase, weights, json }) => {
    const config = loadConfig(process.env);
    if (weights !== undefined) await assertKnownUsecase(config, usecase);
    await withRedis(config, async (redis) => {
      const store = new RolloutStore(redis);
      let before = await store.get(usecase);
      let after = before;
      if (weights !== undefined) ({ before, after } = await withEvents(config, (events, jobPrefix) => changeRollout(store, events, { usecase, weights: parseWeights(weights), by: 'diamond rollout' }, jobPrefix)));
      if (json) return out(JSON.stringify({ usecase, before, after }));
      if (!after) return out(`${usecase}: no weights — every variant's rows pass straight through (set them with \`diamond rollout ${usecase} A=90,B=10\`)`);
      if (weights !== undefined) out(`${usecase}: ${before ? formatWeights(before) : '(none)'} → ${formatWeights(after)}`);
      else out(`${usecase}: ${formatWeights(after)}`);
      out(`  ${describeRanges(after)} of 10,000; the writer applies it to its next batch`);
    });
  },
};

const customerAdd: CommandModule<object, { id: string; json: boolean }> = {
  command: 'add <id>',
  describe: 'create an API key for a customer; the key is printed once and stored only hashed',
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }).option('json', jsonOption),
  handler: async ({ id, json }) => {
    const config = loadConfig(process.env);
    const key = await withRedis(config, (redis) => new CustomerKeys(redis).add(id));
    printResult(json, { customer: id, apiKey: key }, key);
    if (!json) process.stderr.write(`API key for customer ${id} (shown once; stored as its sha256):\n  curl -H 'Authorization: Bearer ${key}' http://${config.http.host}:${config.http.feedbackPort}/v1/feedback\n`);
  },
};

export const customerCommand: CommandModule = {
  command: 'customer <command>',
  describe: 'customers of the feedback API',
  builder: (y: Argv) => y.command(customerAdd).command(customerList).command(customerRotate).command(customerRevoke).demandCommand(1),
  handler: () => undefined,
};

function printReport(report: AbReport): void {
  out(`${report.usecase}: last ${report.days} day(s)`);
  out(`${'variant'.padEnd(8)} ${'rows'.padStart(9)} ${'customers'.padStart(10)} ${'rows/cust'.padStart(10)} ${'produce p50/p99 ms'.padStart(20)} ${'write p50/p99 ms'.padStart(18)}`);
  for (const v of report.variants) {
    out(`${v.variant.padEnd(8)} ${String(v.rows).padStart(9)} ${String(v.customers).padStart(10)} ${v.rowsPerCustomer.toFixed(2).padStart(10)} ${`${v.produceLatencyMs.p50}/${v.produceLatencyMs.p99}`.padStart(20)} ${`${v.writeLatencyMs.p50}/${v.writeLatencyMs.p99}`.padStart(18)}`);
  }
  for (const a of report.agreement) out(`agreement ${a.variants.join('/')}: ${(a.ratio * 100).toFixed(1)} % (${a.both} of ${a.either} findings on the same records)`);
  if (report.variants.length === 0) out('no rows in feedback_by_variant for this use case in that period');
}

export const abCommand: CommandModule<object, { usecase: string; days: number; variants: string | undefined; json: boolean }> = {
  command: 'ab <usecase>',
  describe: "compare a use case's variants: rows, customers, rows per customer, agreement, latency",
  builder: (y) => y
    .positional('usecase', { type: 'string', demandOption: true })
    .option('days', { type: 'number', default: 1, describe: 'days back from today (UTC)' })
    .option('variants', { type: 'string', describe: 'comma-separated; default: those in the rollout weights, else A,B' })
    .option('json', { type: 'boolean', default: false }),
  handler: async ({ usecase, days, variants, json }) => {
    const config = loadConfig(process.env);
    const names = variants?.split(',').map((v) => v.trim()).filter(Boolean);
    // Downstream serves the comparison (it owns the tables); the operator token is the control API's.
    const report = await feedbackApiClient(config, controlToken(config)).json<AbComparison>('GET', abReportPath(usecase, days, names));
    if (json) out(JSON.stringify(report, null, 2));
    else printReport(report);
  },
};

/** `diamond serve downstream`: registered in serve-command.ts's `serveSubcommands`. */
export const serveDownstreamCommand: CommandModule<object, { parts: string[] | undefined; port: number | undefined }> = {
  command: 'downstream',
  describe: 'run the feedback writer, the history writer and the customer feedback API in the foreground (Ctrl-C stops them)',
  builder: (y) => y
    .option('parts', { type: 'string', array: true, choices: DOWNSTREAM_PARTS, describe: 'only these parts (default: all)' })
    .option('port', { type: 'number', describe: 'feedback API port (default DIAMOND_FEEDBACK_PORT; 0 = any free port)' }),
  handler: async ({ parts, port }) => {
    const config = loadConfig(process.env);
    const logger = createLogger(config, { bindings: { service: 'downstream' } });
    // A server that is down at start is waited for (DIAMOND_DEPENDENCY_WAIT), not a reason to exit.
    const running = await startWhenReady(dependenciesOf(config, DOWNSTREAM_DEPENDENCIES), () => startDownstream(config, { logger, parts: parts as DownstreamPart[] | undefined, port }), {
      logger, waitMs: config.platform.dependencyWaitMs,
    });
    const partNames = (parts ?? DOWNSTREAM_PARTS).join(', ');
    process.stderr.write(`downstream running (${partNames})${running.url ? `; feedback API at ${running.url}  (GET ${running.url}/v1/feedback, /v1/feedback/stream, /livez, /readyz, /metrics with a viewer token)` : ''}\n`);
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    logger.info({ signal }, 'stopping');
    await running.stop();
  },
};
