/**
 * Runs downstream in the foreground: `node --import tsx downstream/main.ts [options]`.
 * `diamond serve downstream` does the same through the CLI; tests start this file as a
 * child process (so they can kill -9 it) with unique names:
 *
 *   --parts feedback-writer,history-writer,api   --keyspace ks   --feedback-topic t
 *   --rejected-feedback-topic t2   --feedback-group g   --redis-key-prefix p:   --port 0
 *
 * Prints one JSON line `{"ready":true,"url":…}` on stdout once everything runs.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../shared/config.ts';
import { errorMessage } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import { DOWNSTREAM_PARTS, startDownstream, type DownstreamPart } from './service.ts';

const { values } = parseArgs({
  options: {
    parts: { type: 'string' },
    keyspace: { type: 'string' },
    'feedback-topic': { type: 'string' },
    'rejected-feedback-topic': { type: 'string' },
    'feedback-group': { type: 'string' },
    'records-topic': { type: 'string' },
    'history-group': { type: 'string' },
    'redis-key-prefix': { type: 'string' },
    port: { type: 'string' },
  },
});

const config = loadConfig(process.env);
const logger = createLogger(config, { fd: 2, bindings: { component: 'downstream', pid: process.pid } });
const parts = (values.parts?.split(',').map((part) => part.trim()) ?? [...DOWNSTREAM_PARTS]) as DownstreamPart[];
const unknown = parts.filter((part) => !DOWNSTREAM_PARTS.includes(part));
if (unknown.length > 0) {
  logger.fatal({ unknown, known: DOWNSTREAM_PARTS }, 'unknown --parts; use a comma-separated subset of the known ones');
  process.exit(2);
}

try {
  const running = await startDownstream(config, {
    logger,
    parts,
    keyspace: values.keyspace,
    feedbackTopic: values['feedback-topic'],
    rejectedFeedbackTopic: values['rejected-feedback-topic'],
    feedbackGroup: values['feedback-group'],
    recordsTopic: values['records-topic'],
    historyGroup: values['history-group'],
    redisKeyPrefix: values['redis-key-prefix'],
    port: values.port === undefined ? undefined : Number(values.port),
  });
  process.stdout.write(`${JSON.stringify({ ready: true, url: running.url })}\n`);
  const shutdown = (signal: string): void => {
    logger.info({ signal }, 'stopping');
    running.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
} catch (error) {
  logger.fatal({ error: errorMessage(error) }, 'downstream did not start');
  process.exit(1);
}
