/**
 * pino, configured once. Object first, message second:
 *   log.info({ topic, partition }, 'committed');
 * Components take child loggers (`logger.child({ component: 'kafka' })`).
 * CLI commands log to stderr so that stdout stays clean for `--json` output.
 */
import { pino, type Logger } from 'pino';
import type { DiamondConfig } from './config.ts';

export type { Logger };

export interface LoggerOptions {
  readonly bindings?: Record<string, unknown>;
  /** 1 = stdout (services), 2 = stderr (CLI commands). */
  readonly fd?: 1 | 2;
}

export function createLogger(config: Pick<DiamondConfig, 'logLevel'>, options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: config.logLevel,
      base: options.bindings ?? {},
      // Credentials never reach a log line, wherever a request's headers end up in one.
      redact: { paths: ['*.password', '*.token', '*.apiKey', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
    },
    pino.destination({ fd: options.fd ?? 1, sync: options.fd === 2 }),
  );
}
