/**
 * Upstream commands:
 *   diamond serve upstream [--port N] [--no-raw-topics]   HTTP ingest API + raw-topic normalizer, in the foreground
 *   diamond source add <name> [--rename a=b …] [--default type=purchase …] [--decimal comma] [--rotate-key]
 *   diamond ingest <file> --source <name> [--format csv|jsonl] [--json]
 */
import type { Argv, CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { dependenciesOf, startWhenReady } from '../../shared/dependency-wait.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis, redisUnavailable } from '../../shared/redis.ts';
import {
  loadFile, openUpstream, parseMapping, parsePairs, RawTopicNormalizer, SourceStore, startUpstream, UPSTREAM_DEPENDENCIES, UPSTREAM_KEY_PREFIX,
  type FileFormat, type LoadProgress, type SourceMapping,
} from '../../upstream/index.ts';
import { sourceList, sourceRevoke, sourceRotate } from './key-commands.ts';
import { jsonOption, printResult } from './output.ts';

const out = (line: string): void => {
  process.stdout.write(line + '\n');
};

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

interface ServeUpstreamArgs {
  port: number | undefined; host: string | undefined; 'raw-topics': boolean; json: boolean;
  'normalized-topic': string | undefined; 'rejected-topic': string | undefined; subject: string | undefined; 'redis-key-prefix': string | undefined;
}

export const serveUpstreamCommand: CommandModule<object, ServeUpstreamArgs> = {
  command: 'upstream',
  describe: 'run the HTTP ingest API and the raw-topic normalizer in the foreground (Ctrl-C stops them)',
  builder: (y) => y
    .option('port', { type: 'number', describe: 'listen port (default DIAMOND_INGEST_PORT; 0 = any free port)' })
    .option('host', { type: 'string', describe: 'listen address (default DIAMOND_HTTP_HOST)' })
    .option('raw-topics', { type: 'boolean', default: true, describe: 'also normalize records.raw.* topics (--no-raw-topics to skip)' })
    .option('json', { ...jsonOption, describe: 'only the JSON log lines on stdout (no banner lines)' })
    // Hidden: a second pipeline beside the real one on the same servers (the end-to-end tests
    // run upstream under the platform's supervisor on their own topics, subject and keys).
    .option('normalized-topic', { type: 'string', hidden: true })
    .option('rejected-topic', { type: 'string', hidden: true })
    .option('subject', { type: 'string', hidden: true })
    .option('redis-key-prefix', { type: 'string', hidden: true })
    .implies('normalized-topic', 'rejected-topic')
    .implies('rejected-topic', 'normalized-topic'),
  handler: async ({ port, host, 'raw-topics': rawTopics, json, 'normalized-topic': normalized, 'rejected-topic': rejected, subject, 'redis-key-prefix': redisKeyPrefix }) => {
    const config = loadConfig(process.env);
    const logger = createLogger(config, { bindings: { service: 'upstream' } });
    const say = (line: string): void => (json ? logger.info(line) : out(line));
    // A server that is down at start is waited for (DIAMOND_DEPENDENCY_WAIT), not a reason to exit.
    const upstream = await startWhenReady(dependenciesOf(config, UPSTREAM_DEPENDENCIES), () => startUpstream(config, {
      logger, port, host, subject, redisKeyPrefix, ...(normalized && rejected ? { topics: { normalized, rejected } } : {}),
    }), {
      logger, waitMs: config.platform.dependencyWaitMs,
    });
    say(`ingest API listening on ${upstream.url}  (POST ${upstream.url}/v1/records, GET /livez, /readyz, /metrics with a viewer token)`);
    let normalizer: RawTopicNormalizer | null = null;
    if (rawTopics) {
      normalizer = new RawTopicNormalizer({ kafka: upstream.kafka, pipeline: upstream.pipeline, sources: upstream.sources, logger: logger.child({ component: 'raw-normalizer' }) });
      await normalizer.start().catch((error: unknown) => logger.warn({ err: error }, 'raw-topic normalizer not started'));
      say('raw-topic normalizer consuming records.raw.* topics');
    }
    const signal = await untilSignal();
    logger.info({ signal }, 'stopping');
    await normalizer?.stop();
    await upstream.close();
  },
};

interface SourceAddArgs { name: string; rename: string[]; default: string[]; 'time-format': string | undefined; decimal: string | undefined; 'rotate-key': boolean; json: boolean }

const sourceAdd: CommandModule<object, SourceAddArgs> = {
  command: 'add <name>',
  describe: 'add a source with its field mapping and print its new API key (shown only this once)',
  builder: (y) => y
    .positional('name', { type: 'string', demandOption: true, describe: 'lower-case letters, digits, _ and -' })
    .option('rename', { type: 'string', array: true, default: [], describe: 'source field=record field, e.g. cust_id=customer_id' })
    .option('default', { type: 'string', array: true, default: [], describe: 'field=value used when the field is missing, e.g. type=purchase' })
    .option('time-format', { type: 'string', choices: ['auto', 'iso', 'epoch-seconds', 'epoch-millis'] })
    .option('decimal', { type: 'string', choices: ['auto', 'dot', 'comma'], describe: 'decimal mark of amounts written as text' })
    .option('rotate-key', { type: 'boolean', default: false, describe: 'replace the key of an existing source (the old key stops working)' })
    .option('json', jsonOption),
  handler: async (args) => {
    const config = loadConfig(process.env);
    const mapping: Partial<SourceMapping> = parseMapping({
      rename: parsePairs('rename', args.rename),
      defaults: parsePairs('default', args.default),
      ...(args['time-format'] ? { timeFormat: args['time-format'] } : {}),
      ...(args.decimal ? { decimal: args.decimal } : {}),
    });
    const redis = createRedis(config, { keyPrefix: UPSTREAM_KEY_PREFIX });
    redis.on('error', () => undefined); // reported by connect() below
    try {
      await redis.connect().catch((cause: unknown) => {
        throw redisUnavailable(config, cause);
      });
      const { apiKey } = await new SourceStore(redis).add(args.name, mapping, { rotateKey: args['rotate-key'] });
      const ingestUrl = `http://${config.http.host}:${config.http.ingestPort}/v1/records`;
      if (args.json) return printResult(true, { source: args.name, apiKey, ingestUrl }, '');
      out(`source "${args.name}" ${args['rotate-key'] ? 'has a new key' : 'added'}. Its API key (shown only now, stored hashed):\n\n  ${apiKey}\n`);
      out(`send records with: curl -H "Authorization: Bearer ${apiKey}" --data-binary @records.ndjson http://${config.http.host}:${config.http.ingestPort}/v1/records`);
    } finally {
      redis.disconnect();
    }
  },
};

export const sourceCommand: CommandModule = {
  command: 'source <command>',
  describe: 'sources that send records (API keys, field mappings)',
  builder: (y: Argv) => y.command(sourceAdd).command(sourceList).command(sourceRotate).command(sourceRevoke).demandCommand(1),
  handler: () => undefined,
};

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** `[██████░░░░] 61%  120,000 records  18,400/s  rejected 12  ETA 0:04` */
export function formatProgress(progress: LoadProgress): string {
  const fraction = progress.totalBytes > 0 ? Math.min(1, progress.bytesRead / progress.totalBytes) : 1;
  const width = 24;
  const filled = Math.round(fraction * width);
  const seconds = progress.elapsedMs / 1000;
  const rate = seconds > 0 ? progress.records / seconds : 0;
  const eta = fraction > 0 ? seconds / fraction - seconds : Number.NaN;
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${progress.records.toLocaleString('en')} records  ${Math.round(rate).toLocaleString('en')}/s  rejected ${progress.rejected.toLocaleString('en')}  ETA ${formatDuration(eta)}`;
}

interface IngestArgs { file: string; source: string; format: string | undefined; delimiter: string | undefined; 'batch-size': number; json: boolean }

export const ingestCommand: CommandModule<object, IngestArgs> = {
  command: 'ingest <file>',
  describe: 'load a CSV or JSONL file (streamed) into records.normalized; safe to rerun',
  builder: (y) => y
    .positional('file', { type: 'string', demandOption: true })
    .option('source', { type: 'string', demandOption: true, describe: 'the source the records belong to (see `diamond source add`)' })
    .option('format', { type: 'string', choices: ['csv', 'jsonl'], describe: 'default: from the file extension' })
    .option('delimiter', { type: 'string', describe: 'CSV delimiter (default , or tab for .tsv)' })
    .option('batch-size', { type: 'number', default: 2000 })
    .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' }),
  handler: async (args) => {
    const config = loadConfig(process.env);
    const logger = createLogger(config, { fd: 2, bindings: { command: 'ingest' } });
    const core = await openUpstream(config, { logger });
    const tty = process.stderr.isTTY && !args.json;
    let lastDrawn = 0;
    const draw = (progress: LoadProgress): void => {
      if (args.json || performance.now() - lastDrawn < (tty ? 100 : 5000)) return;
      lastDrawn = performance.now();
      process.stderr.write(tty ? `\r${formatProgress(progress)}` : `${formatProgress(progress)}\n`);
    };
    try {
      const source = await core.sources.get(args.source);
      const summary = await loadFile(args.file, {
        source, pipeline: core.pipeline, logger, format: args.format as FileFormat | undefined, delimiter: args.delimiter, batchSize: args['batch-size'], onProgress: draw,
      });
      if (tty) process.stderr.write(`\r${formatProgress(summary)}\n`);
      if (args.json) return out(JSON.stringify(summary));
      const seconds = summary.elapsedMs / 1000;
      out(`${summary.file}: ${summary.records} records in ${seconds.toFixed(1)} s (${Math.round(summary.records / Math.max(seconds, 0.001))}/s): ${summary.accepted} accepted → ${core.pipeline.topics.normalized}, ${summary.rejected} rejected → ${core.pipeline.topics.rejected}`);
    } finally {
      await core.close();
    }
  },
};
