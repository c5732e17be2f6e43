/**
 * The ingest service as its own process for the upstream bench, so its peak memory is its
 * own: `node --import tsx test/bench/upstream-server.ts <json options>`; prints its URL.
 */
import { loadConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { startUpstream, type UpstreamOptions } from '../../upstream/service.ts';

const config = loadConfig(process.env);
const options = JSON.parse(process.argv[2] ?? '{}') as Omit<UpstreamOptions, 'logger'>;
const upstream = await startUpstream(config, { ...options, logger: createLogger(config, { fd: 2 }), port: 0 });
process.stdout.write(`${upstream.url}\n`);
process.once('SIGTERM', () => {
  void upstream.close().then(() => process.exit(0));
});
