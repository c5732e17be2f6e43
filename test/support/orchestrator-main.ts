/**
 * An isolated orchestrator in its own process, so an end-to-end test can kill -9 it the way
 * a machine loses a process (no lease released, no consumer left cleanly):
 *
 *   node --import tsx test/support/orchestrator-main.ts '<OrchestratorOptions as JSON>'
 *
 * `diamond serve orchestrator` runs the same Reconciler but on the platform's real names;
 * tests need unique topics, prefixes and directories. Configuration comes from DIAMOND_*
 * variables as everywhere. Prints `{"ready":true}` once connected; SIGTERM stops it.
 */
import { loadConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import type { OrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { Reconciler } from '../../infra/orchestrator/reconciler.ts';

const options = JSON.parse(process.argv[2] ?? '') as OrchestratorOptions;
const config = loadConfig(process.env);
const logger = createLogger(config, { fd: 2, bindings: { component: 'orchestrator', pid: process.pid } });
const reconciler = new Reconciler(config, options, logger);
await reconciler.connect();
const loop = reconciler.run();
process.stdout.write(`${JSON.stringify({ ready: true, id: reconciler.id })}\n`);
const shutdown = (): void => {
  void reconciler.stop().then(() => loop).finally(() => process.exit(0));
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
