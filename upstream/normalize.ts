/**
 * The one normalizer every ingest path shares (HTTP, files, raw topics):
 * a parsed source record → a CustomerRecord, or every reason it cannot be one.
 *
 *   const result = normalizeRecord(JSON.parse(line), { source: 'shop', mapping, ingestedAt: Date.now() });
 *   if (result.ok) produce(result.record); else reject(result.reasons);
 *
 * Pure: no I/O and no clock (the caller passes ingestedAt), so it is tested on its own.
 */
import { createHash } from 'node:crypto';
import type { CustomerRecord } from '../shared/schemas.ts';
import { describeType, readAmount, readCurrency, readEventTime, readId, readType } from './fields.ts';
import type { SourceMapping } from './mapping.ts';

/** One thing wrong with a record: which field, and what is wrong with it. */
export interface Reason {
  readonly field: string;
  readonly problem: string;
}

export type NormalizeResult = { readonly ok: true; readonly record: CustomerRecord } | { readonly ok: false; readonly reasons: readonly Reason[] };

export interface NormalizeContext {
  readonly source: string;
  readonly mapping: SourceMapping;
  /** When upstream accepted the record (epoch millis). */
  readonly ingestedAt: number;
}

export const LIMITS = {
  idLength: 256,
  typeLength: 64,
  attributeKeyLength: 256,
  /** A 10 MB field is a broken client, not data: the record is rejected, not truncated. */
  attributeValueLength: 64 * 1024,
  attributes: 256,
} as const;

const KNOWN_FIELDS = new Set(['record_id', 'customer_id', 'event_time', 'type', 'amount', 'currency']);

export function normalizeRecord(input: unknown, context: NormalizeContext): NormalizeResult {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, reasons: [{ field: '(record)', problem: `expected a JSON object, got ${describeType(input)}` }] };
  }
  const reasons: Reason[] = [];
  const fields = applyMapping(input as Record<string, unknown>, context.mapping, reasons);

  const customerId = readId(fields.get('customer_id'), LIMITS.idLength);
  const eventTime = readEventTime(fields.get('event_time'), context.mapping.timeFormat);
  const type = readType(fields.get('type'), LIMITS.typeLength);
  const amount = readAmount(fields.get('amount'), context.mapping.decimal);
  const currency = readCurrency(fields.get('currency'));
  const givenId = fields.get('record_id');
  const recordId = givenId === undefined || givenId === null || givenId === '' ? null : readId(givenId, LIMITS.idLength);

  if (isNullish(fields.get('customer_id'))) reasons.push({ field: 'customer_id', problem: 'is missing' });
  else if (!customerId.ok) reasons.push({ field: 'customer_id', problem: customerId.problem });
  if (isNullish(fields.get('event_time'))) reasons.push({ field: 'event_time', problem: 'is missing' });
  else if (!eventTime.ok) reasons.push({ field: 'event_time', problem: eventTime.problem });
  if (isNullish(fields.get('type'))) reasons.push({ field: 'type', problem: 'is missing (send it, or give the source a default type)' });
  else if (!type.ok) reasons.push({ field: 'type', problem: type.problem });
  if (!amount.ok) reasons.push({ field: 'amount', problem: amount.problem });
  if (!currency.ok) reasons.push({ field: 'currency', problem: currency.problem });
  if (recordId && !recordId.ok) reasons.push({ field: 'record_id', problem: recordId.problem });
  if (amount.ok && currency.ok && amount.value.currency && currency.value && amount.value.currency !== currency.value) {
    reasons.push({ field: 'currency', problem: `${currency.value} disagrees with the currency written in amount (${amount.value.currency})` });
  }

  const attributes = readAttributes(fields, reasons);
  if (reasons.length > 0 || !customerId.ok || !eventTime.ok || !type.ok || !amount.ok || !currency.ok || (recordId && !recordId.ok)) {
    return { ok: false, reasons };
  }
  return {
    ok: true,
    record: {
      record_id: recordId?.value ?? stableRecordId(context.source, input),
      customer_id: customerId.value,
      source: context.source,
      event_time: eventTime.value,
      type: type.value,
      amount: amount.value.amount,
      currency: currency.value ?? amount.value.currency,
      attributes,
      ingested_at: context.ingestedAt,
    },
  };
}

function isNullish(value: unknown): boolean {
  return value === undefined || value === null;
}

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** Renames fields, fills defaults; a field given under two names is a reason, not a guess. */
function applyMapping(input: Record<string, unknown>, mapping: SourceMapping, reasons: Reason[]): Map<string, unknown> {
  const fields = new Map<string, unknown>();
  let origin: Map<string, string> | undefined; // only needed once a name is renamed onto another
  for (const name in input) {
    if (!Object.hasOwn(input, name)) continue;
    const value = input[name];
    const target = Object.hasOwn(mapping.rename, name) ? (mapping.rename[name] ?? name) : name;
    if (fields.has(target)) {
      const earlier = origin?.get(target) ?? target;
      if (!isBlank(fields.get(target))) {
        if (!isBlank(value)) reasons.push({ field: target, problem: `is given twice (as ${earlier} and ${name})` });
        continue;
      }
    }
    fields.set(target, value);
    if (target !== name) (origin ??= new Map()).set(target, name);
  }
  for (const name in mapping.defaults) {
    if (isBlank(fields.get(name))) fields.set(name, mapping.defaults[name]);
  }
  return fields;
}

/** Fields the mapping does not know, as strings; a nested `attributes` object is flattened into them. */
function readAttributes(fields: Map<string, unknown>, reasons: Reason[]): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (KNOWN_FIELDS.has(name)) continue;
    if (name === 'attributes' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const key in value) if (Object.hasOwn(value, key)) addAttribute(attributes, key, (value as Record<string, unknown>)[key], reasons);
    } else {
      addAttribute(attributes, name, value, reasons);
    }
  }
  const count = Object.keys(attributes).length;
  if (count > LIMITS.attributes) reasons.push({ field: '(record)', problem: `has ${count} extra fields; at most ${LIMITS.attributes} are allowed` });
  return attributes;
}

function addAttribute(attributes: Record<string, string>, key: string, value: unknown, reasons: Reason[]): void {
  if (isNullish(value)) return;
  if (key.length > LIMITS.attributeKeyLength) {
    reasons.push({ field: `${key.slice(0, 40)}…`, problem: `field name is ${key.length} characters long; at most ${LIMITS.attributeKeyLength} are allowed` });
    return;
  }
  const text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value) ?? '';
  if (text.length > LIMITS.attributeValueLength) {
    reasons.push({ field: key, problem: `is ${text.length} characters long; at most ${LIMITS.attributeValueLength} are allowed` });
    return;
  }
  attributes[key] = text;
}

/**
 * `h-` + 32 hex of sha256(source, content with keys sorted): the same content from the same
 * source always gets the same id, so re-sending or re-loading a file duplicates nothing
 * downstream.
 */
export function stableRecordId(source: string, content: unknown): string {
  return `h-${createHash('sha256').update(source).update('\n').update(canonicalJson(content)).digest('hex').slice(0, 32)}`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
