/**
 * The JSON message contracts of the control topics and of a per-record failure, defined once
 * in shared/schemas/ and read here (TypeScript) and by diamond_sdk/contracts.py (Python):
 *
 *   diamond.progress  progress.schema.json         the SDK in each job → the orchestrator
 *   diamond.events    lifecycle-event.schema.json  the orchestrator → dashboard, CLI, subscribers
 *   (a file)          record-failure.schema.json   the SDK's test harness → `diamond usecase test`
 *   diamond.runs      run-event.schema.json        the run dispatcher → `diamond run`, SSE, subscribers
 *   (an HTTP POST)    alert-webhook.schema.json    the orchestrator's alerts → DIAMOND_ALERT_WEBHOOKS
 *
 *   const parsed = parseProgressMessage(raw);
 *   if (!parsed.ok) log.warn({ field: parsed.field, problem: parsed.problem }, 'ignored a malformed progress message');
 *
 * The TypeScript types below are written by hand for readable editor hints; messages.test.ts
 * checks that they name exactly the schemas' properties, required fields and event names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiamondError } from './errors.ts';
import { assertSupportedSchema, checkAgainstSchema, type JsonSchema, type SchemaViolation } from './json-schema-subset.ts';
import { SCHEMA_DIR } from './schemas.ts';

export const MessageSchemaFiles = { progress: 'progress.schema.json', lifecycle: 'lifecycle-event.schema.json', recordFailure: 'record-failure.schema.json', run: 'run-event.schema.json', alertWebhook: 'alert-webhook.schema.json' } as const;
export type MessageContract = keyof typeof MessageSchemaFiles;

export interface MessageSchema extends JsonSchema {
  readonly title: string;
  readonly required: readonly string[];
  readonly properties: Readonly<Record<string, JsonSchema>>;
}

export function readMessageSchema(contract: MessageContract): MessageSchema {
  const schema: unknown = JSON.parse(readFileSync(join(SCHEMA_DIR, MessageSchemaFiles[contract]), 'utf8'));
  assertSupportedSchema(schema);
  return schema as MessageSchema;
}

const schemas: Record<MessageContract, MessageSchema> = {
  progress: readMessageSchema('progress'), lifecycle: readMessageSchema('lifecycle'), recordFailure: readMessageSchema('recordFailure'), run: readMessageSchema('run'),
  alertWebhook: readMessageSchema('alertWebhook'),
};

function eventNames<T extends string>(contract: MessageContract): readonly T[] {
  const names = schemas[contract].properties['event']?.enum;
  if (!names || !names.every((name) => typeof name === 'string')) throw new Error(`${MessageSchemaFiles[contract]}: "event" must be an enum of strings`);
  return Object.freeze([...names]) as readonly T[];
}

export type ProgressEvent = 'started' | 'progress' | 'stopped' | 'failed' | 'backfilling' | 'backfilled';
export type LifecycleEvent = 'deployed' | 'undeployed' | 'starting' | 'running' | 'failed' | 'stalled' | 'restarted' | 'crash-looping' | 'stopped' | 'adopted' | 'replay-requested' | 'replayed' | 'backfill-requested' | 'backfilling' | 'backfilled' | 'outage' | 'alert-firing' | 'alert-resolved' | 'rollout-changed';

/** The event names of diamond.progress, in the schema's order. */
export const PROGRESS_EVENTS: readonly ProgressEvent[] = eventNames<ProgressEvent>('progress');
/** The event names of diamond.events, in the schema's order. */
export const LIFECYCLE_EVENTS: readonly LifecycleEvent[] = eventNames<LifecycleEvent>('lifecycle');

export type RunEvent = 'queued' | 'started' | 'finished' | 'failed' | 'cancelled' | 'timed-out';
/** The event names of diamond.runs, in the schema's order. */
export const RUN_EVENTS: readonly RunEvent[] = eventNames<RunEvent>('run');

/** Why a run failed or timed out (docs/RUNS.md): user_code carries the user's file and line. */
export interface RunError {
  readonly code: string;
  readonly message: string;
  readonly file?: string | null;
  readonly line?: number | null;
  readonly function?: string | null;
}

/** The fields of a diamond.runs message besides `event` and `at`. */
export interface RunEventFields {
  readonly run: string;
  readonly function: string;
  readonly usecase: string;
  readonly by?: string;
  readonly session?: string;
  readonly queuedMs?: number;
  readonly durationMs?: number;
  readonly error?: RunError;
  readonly result?: unknown;
}

export interface RunEventMessage extends RunEventFields {
  readonly event: RunEvent;
  readonly at: string;
}

/** Partition (as a string) → offset. */
export type PartitionOffsets = Readonly<Record<string, number>>;

/** A diamond.progress message; per event, the schema requires more fields (see progress.schema.json). */
export interface ProgressMessage {
  readonly event: ProgressEvent;
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  readonly version?: string;
  readonly at: string;
  readonly run_id?: string;
  readonly ui_url?: string;
  readonly batch_id?: number;
  readonly start_offsets?: PartitionOffsets;
  readonly end_offsets?: PartitionOffsets;
  readonly rows_in?: number;
  readonly rows_out?: number;
  readonly rows_rejected?: number;
  readonly input_rows_per_second?: number | null;
  readonly processed_rows_per_second?: number | null;
  readonly durations_ms?: Readonly<Record<string, number>>;
  readonly since?: string;
  readonly history_batch?: number;
  readonly files?: number;
  readonly duration_ms?: number;
  readonly last_batch_id?: number;
  readonly error?: string;
  readonly message?: string;
  readonly file?: string | null;
  readonly line?: number | null;
  readonly function?: string | null;
  /** HMAC of the rest of the message with the launch's progress key (progress-signature.ts). */
  readonly signature?: string;
}

/** The fields of a lifecycle event besides `event` and `at` (which the publisher sets). */
export interface LifecycleEventFields {
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  readonly version?: string | null;
  readonly generation?: number;
  readonly pid?: number | null;
  readonly exitCode?: number | null;
  readonly error?: string | null;
  readonly restarts?: number;
  readonly crashes?: number;
  readonly upgradeFrom?: string;
  readonly upgradedFrom?: string | null;
  readonly since?: string;
  readonly offsets?: PartitionOffsets;
  /** running after an exact-boundary upgrade: ms from the old version's stop request to the new one's query start. */
  readonly pauseMs?: number;
  /** The part of pauseMs until the old version's last batch was committed and the new one given its offsets. */
  readonly drainMs?: number;
  /** backfilled: what the backfill read, wrote and rejected, and how long it took. */
  readonly rowsIn?: number;
  readonly rowsOut?: number;
  readonly rowsRejected?: number;
  readonly durationMs?: number;
  readonly by?: string;
  readonly outages?: number;
  readonly reason?: string;
  readonly rule?: AlertRuleName;
  readonly severity?: AlertSeverity;
  readonly summary?: string;
  readonly value?: number | null;
  readonly threshold?: number;
  readonly unit?: string;
  readonly firingSince?: string;
  /** starting/restarted: the job took a warm spare driver (driver-pool.ts); false = a cold spark-submit. */
  readonly warm?: boolean;
  /** starting/restarted with warm false: why no spare was taken. */
  readonly cold?: string;
  /** rollout-changed: the use case's weights now, variant → weight. */
  readonly weights?: Readonly<Record<string, number>>;
  /** rollout-changed: the weights replaced (null: there were none). */
  readonly before?: Readonly<Record<string, number>> | null;
}

/** The alert rules (infra/orchestrator/alert-rules.ts), as lifecycle-event.schema.json names them. */
export type AlertRuleName = 'lag' | 'batch-p99' | 'crash-looping' | 'stalled' | 'offsets-expiring';
export type AlertSeverity = 'warning' | 'critical';

/** The body of an alert's POST to each configured webhook (alert-webhook.schema.json). */
export interface AlertWebhook {
  readonly alert: AlertRuleName;
  readonly state: 'firing' | 'resolved';
  readonly severity: AlertSeverity;
  readonly job: string;
  readonly usecase: string;
  readonly variant: string;
  /** What the rule measured, in `unit`; null when it could not be measured. */
  readonly value: number | null;
  readonly threshold: number;
  readonly unit: string;
  readonly summary: string;
  /** When the transition was seen (ISO). */
  readonly at: string;
  /** When the alert fired (ISO); for a resolved alert, how long it was firing is `at − firedAt`. */
  readonly firedAt: string | null;
}

/** A diamond.events message. */
export interface LifecycleEventMessage extends LifecycleEventFields {
  readonly event: LifecycleEvent;
  readonly at: string;
}

/**
 * A record a use case's per-record feedback() raised on (diamond_sdk/_runtime/record_failure.py
 * builds it from the exception object in the Python worker).
 */
export interface RecordFailure {
  readonly usecase: string;
  readonly variant: string;
  readonly record_id?: string | null;
  readonly customer_id?: string | null;
  /** The exception's class name, e.g. ValueError. */
  readonly exception: string;
  readonly message: string;
  /** The deepest frame in the use case's folder; null when the error arose outside it. */
  readonly file: string | null;
  readonly line: number | null;
  readonly function: string | null;
  readonly traceback: string;
  readonly record: Readonly<Record<string, unknown>>;
  /** The test asked for rejections, so the harness returned it instead of raising. */
  readonly expected?: boolean;
}

export type Parsed<T> = { readonly ok: true; readonly message: T } | ({ readonly ok: false } & SchemaViolation);

function parse<T>(contract: MessageContract, raw: unknown): Parsed<T> {
  let value: unknown = raw;
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
    try {
      value = JSON.parse(raw.toString());
    } catch {
      return { ok: false, field: '(message)', problem: 'is not JSON' };
    }
  }
  const violation = checkAgainstSchema(schemas[contract], value);
  return violation ? { ok: false, ...violation } : { ok: true, message: value as T };
}

/** Validates a diamond.progress message (its JSON text, or already parsed). Never throws. */
export function parseProgressMessage(raw: unknown): Parsed<ProgressMessage> {
  return parse<ProgressMessage>('progress', raw);
}

/** Validates a diamond.events message (its JSON text, or already parsed). Never throws. */
export function parseLifecycleEvent(raw: unknown): Parsed<LifecycleEventMessage> {
  return parse<LifecycleEventMessage>('lifecycle', raw);
}

/** Validates a diamond.runs message (its JSON text, or already parsed). Never throws. */
export function parseRunEvent(raw: unknown): Parsed<RunEventMessage> {
  return parse<RunEventMessage>('run', raw);
}

/** Validates an alert webhook's body (its JSON text, or already parsed), as a receiver would. Never throws. */
export function parseAlertWebhook(raw: unknown): Parsed<AlertWebhook> {
  return parse<AlertWebhook>('alertWebhook', raw);
}

/** The webhook body to send, checked against alert-webhook.schema.json (throws MessageContractError). */
export function buildAlertWebhook(body: AlertWebhook): AlertWebhook {
  const message = JSON.parse(JSON.stringify(body)) as AlertWebhook;
  const violation = checkAgainstSchema(schemas.alertWebhook, message);
  if (violation) throw new MessageContractError('alertWebhook', violation);
  return message;
}

/** Validates a RecordFailure (its JSON text, or already parsed). Never throws. */
export function parseRecordFailure(raw: unknown): Parsed<RecordFailure> {
  return parse<RecordFailure>('recordFailure', raw);
}

/** A code path built an event the contract refuses: a bug, named by its field. */
export class MessageContractError extends DiamondError {
  readonly field: string;

  constructor(contract: MessageContract, violation: SchemaViolation) {
    super(`${MessageSchemaFiles[contract]}: ${violation.field} ${violation.problem}`, {
      code: 'DIAMOND_MESSAGE_INVALID',
      hint: `build the message as shared/schemas/${MessageSchemaFiles[contract]} describes (or extend the schema: add optional fields only)`,
    });
    this.field = violation.field;
  }
}

/** The lifecycle event to publish, stamped now and checked against the schema (throws MessageContractError). */
export function buildLifecycleEvent(event: LifecycleEvent, fields: LifecycleEventFields, now = new Date()): LifecycleEventMessage {
  // Drop undefined fields first: JSON would drop them anyway, and the schema sees what is sent.
  const message = JSON.parse(JSON.stringify({ event, at: now.toISOString(), ...fields })) as LifecycleEventMessage;
  const violation = checkAgainstSchema(schemas.lifecycle, message);
  if (violation) throw new MessageContractError('lifecycle', violation);
  return message;
}

/** The run event to publish, stamped now and checked against run-event.schema.json (throws MessageContractError). */
export function buildRunEvent(event: RunEvent, fields: RunEventFields, now = new Date()): RunEventMessage {
  const message = JSON.parse(JSON.stringify({ event, at: now.toISOString(), ...fields })) as RunEventMessage;
  const violation = checkAgainstSchema(schemas.run, message);
  if (violation) throw new MessageContractError('run', violation);
  return message;
}
