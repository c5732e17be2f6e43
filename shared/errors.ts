/**
 * One error hierarchy for the whole platform. Every error carries a stable `code` from the
 * catalog (shared/error-catalog.ts: HTTP status, whether retrying can help, a doc line) and a
 * hint that tells the reader what to do next. Restart and retry decisions read
 * `code`/`retriable`, never the message text.
 */
import { errorSpec, type ErrorCode } from './error-catalog.ts';

export type { ErrorCode };

export interface DiamondErrorOptions {
  readonly code: ErrorCode;
  readonly hint?: string | undefined;
  readonly cause?: unknown;
}

export class DiamondError extends Error {
  readonly code: ErrorCode;
  /** From the catalog: one answer per code, wherever the error is thrown. */
  readonly retriable: boolean;
  /** The HTTP status an API answers with (the catalog's). */
  readonly status: number;
  readonly hint: string | undefined;

  constructor(message: string, options: DiamondErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    const spec = errorSpec(options.code);
    this.retriable = spec.retriable;
    this.status = spec.status;
    this.hint = options.hint;
  }

  /** Message plus hint, for people reading a terminal. */
  describe(): string {
    return this.hint ? `${this.message}\n  → ${this.hint}` : this.message;
  }
}

/** A configuration value is missing or malformed. Names the variable and the fix. */
export class ConfigError extends DiamondError {
  constructor(message: string, hint?: string) {
    super(message, { code: 'DIAMOND_CONFIG_INVALID', hint });
  }
}

/** A service (Kafka, registry, Cassandra, Redis, Spark) did not answer at its address. */
export class ServiceUnavailableError extends DiamondError {
  readonly service: string;
  readonly address: string;

  constructor(service: string, address: string, options: { hint?: string; cause?: unknown; logFile?: string } = {}) {
    const where = options.logFile ? ` (log: ${options.logFile})` : '';
    super(`${service} not reachable at ${address}${where}`, {
      code: 'DIAMOND_SERVICE_UNAVAILABLE',
      hint: options.hint ?? 'start the local services with `npx diamond services up`, or point DIAMOND_* variables at a running cluster',
      cause: options.cause,
    });
    this.service = service;
    this.address = address;
  }
}

/** Installing or starting a local service failed. */
export class ServiceStartError extends DiamondError {
  readonly service: string;

  constructor(service: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(`${service}: ${message}`, { code: 'DIAMOND_SERVICE_START_FAILED', hint: options.hint, cause: options.cause });
    this.service = service;
  }
}

/**
 * An HTTP API's refusal with the headers that go with it (Allow, WWW-Authenticate,
 * Retry-After, …); its status comes from the catalog like every other DiamondError's.
 */
export class ApiError extends DiamondError {
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, hint?: string, headers: Readonly<Record<string, string>> = {}) {
    super(message, { code, hint });
    this.headers = headers;
  }
}

/**
 * The port an API should listen on is taken. One line that names the port and how to change
 * it (no hint: the CLI prints it as is, and a second line would only repeat it).
 */
export class PortInUseError extends DiamondError {
  readonly port: number;

  constructor(api: string, port: number, host: string, change: { readonly flag?: string; readonly env: string }, cause?: unknown) {
    super(`the ${api} cannot listen on ${host}:${port}: port ${port} is already in use; ${change.flag ? `pass ${change.flag} or ` : ''}set ${change.env}`, { code: 'DIAMOND_PORT_IN_USE', cause });
    this.port = port;
  }
}

/** The HTTP status of any error: a DiamondError's from the catalog, anything else is ours (500). */
export function httpStatusOf(error: unknown): number {
  return error instanceof DiamondError ? error.status : 500;
}

/** Walks `cause` links to the innermost error, so decisions read the root cause. */
export function rootCause(error: unknown): unknown {
  let current = error;
  const seen = new Set<unknown>();
  while (current instanceof Error && current.cause !== undefined && !seen.has(current)) {
    seen.add(current);
    current = current.cause;
  }
  return current;
}

export function errorMessage(error: unknown): string {
  if (error instanceof DiamondError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Kafka did not acknowledge a write in time; nothing was acknowledged to the sender. */
export class KafkaWriteError extends DiamondError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'DIAMOND_KAFKA_WRITE_FAILED', hint: 'retry later; check `npx diamond services status`', cause: options.cause });
  }
}

/** Too much is already waiting for Kafka; the caller should slow down and retry. */
export class BackpressureError extends DiamondError {
  constructor(message: string) {
    super(message, { code: 'DIAMOND_BACKPRESSURE', hint: 'retry after a short pause' });
  }
}

/** The registry refused a schema as incompatible with the versions already registered. */
export class SchemaIncompatibleError extends DiamondError {
  readonly subject: string;

  constructor(subject: string, options: { cause?: unknown } = {}) {
    super(`the schema for ${subject} is not BACKWARD compatible with the versions already registered`, {
      code: 'DIAMOND_SCHEMA_INCOMPATIBLE',
      hint: 'add new fields with defaults (or make them nullable) instead of removing, renaming or retyping fields',
      cause: options.cause,
    });
    this.subject = subject;
  }
}

/**
 * A write of the orchestrator's control state was refused because the writer no longer
 * holds the leader lease (it paused past the lease and another took over): it must step
 * down, not retry. Retriable in the sense that it may lead again after a fresh acquisition.
 */
export class LeaseLostError extends DiamondError {
  constructor(fence: string | null, holder: string | null) {
    super(`the leader lease ${fence ?? '(none)'} is no longer held; ${holder ?? 'nobody'} holds it now, so the write was refused`, {
      code: 'DIAMOND_LEASE_LOST',
      hint: 'nothing to do: this orchestrator stops supervising and the lease holder carries on',
    });
  }
}
