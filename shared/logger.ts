/**
 * pino, configured once. Object first, message second:
 *   log.info({ topic, partition }, 'committed');
 * Components take child loggers (`logger.child({ component: 'kafka' })`).
 * CLI commands log to stderr so that stdout stays clean for `--json` output.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { DiamondConfig } from './config.ts';

export type { Logger };

export interface LoggerOptions {
  readonly bindings?: Record<string, unknown>;
  /** 1 = stdout (services), 2 = stderr (CLI commands). */
  readonly fd?: 1 | 2;
  /** Where lines go instead of `fd` (tests read them back). */
  readonly destination?: DestinationStream;
}

/**
 * Fields that hold credentials, at the depths they occur: a client's options logged whole
 * (`{ sasl: { password } }`, kafkajs' `{ kafkajs: { sasl } }`), request headers, tokens.
 * pino's `*` matches one level, hence one path per depth.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  'password', '*.password', '*.*.password', '*.*.*.password',
  'sasl', '*.sasl', '*.*.sasl',
  '*.token', '*.apiKey', '*.secret',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'req.headers.cookie',
  // ioredis errors name the failed command with its arguments: AUTH's are the credentials.
  'err.command.args', 'error.command.args', '*.err.command.args', 'err.cause.command.args',
];

export function createLogger(config: Pick<DiamondConfig, 'logLevel'>, options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: config.logLevel,
      base: options.bindings ?? {},
      // Credentials never reach a log line, wherever a request's headers end up in one.
      redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: options.fd ?? 1, sync: options.fd === 2 }),
  );
}
