/**
 * An orchestrator as its own process for the orchestrator bench, so its memory is its own:
 * the reconcile loop and the control API, wired as `diamond serve orchestrator` wires them,
 * but on isolated names (Redis key prefix, job prefix, topics, subjects, directories) given
 * as JSON in argv[2]; settings come from DIAMOND_* variables as usual. The control API
 * listens on a free port. Prints `{"ready":true,"url":…,"pid":…}` once both run; SIGTERM
 * stops both (the jobs keep running, as with the real one).
 */
import { loadConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { startControlApi } from '../../infra/orchestrator/control-api.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import type { OrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { Reconciler } from '../../infra/orchestrator/reconciler.ts';

const config = loadConfig(process.env);
const options = JSON.parse(process.argv[2] ?? '') as OrchestratorOptions;
const log = createLogger(config, { fd: 2, bindings: { component: 'orchestrator', bench: true } });
const reconciler = new Reconciler(config, options, log);
await reconciler.connect();
const api = await startControlApi(config, { options, logger: log, endpoints: platformEndpoints(config) }, { port: 0 });
const loop = reconciler.run();
process.stdout.write(`${JSON.stringify({ ready: true, url: api.url, pid: process.pid, tickMs: config.orchestrator.tickMs, backoffMs: config.orchestrator.backoffInitialMs })}\n`);
process.once('SIGTERM', () => {
  void Promise.all([reconciler.stop(), api.close()]).then(() => loop).finally(() => process.exit(0));
});
