/**
 * Turns a decoded Feedback of any registered writer version into the current shape.
 * Versions are BACKWARD compatible: fields added later carry defaults, which are filled
 * in here when an older writer did not send them; fields unknown to us are ignored.
 */
import type { Feedback, CustomerRecord } from '../shared/schemas.ts';

type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const stringMap = (value: unknown): Record<string, string> =>
  isRecord(value) ? Object.fromEntries(Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string')) : {};

function missing(value: Record<string, unknown>, strings: readonly string[], numbers: readonly string[]): string[] {
  return [
    ...strings.filter((name) => typeof value[name] !== 'string' || value[name] === ''),
    ...numbers.filter((name) => typeof value[name] !== 'number' || !Number.isFinite(value[name])),
  ];
}

export function toFeedback(value: unknown): Checked<Feedback> {
  if (!isRecord(value)) return { ok: false, reason: 'decoded value is not a record' };
  const bad = missing(value, ['feedback_id', 'customer_id', 'usecase', 'variant'], ['event_time']);
  if (bad.length > 0) return { ok: false, reason: `Feedback without valid ${bad.join(', ')}` };
  const text = (name: string): string => (typeof value[name] === 'string' ? value[name] : '');
  return {
    ok: true,
    value: {
      feedback_id: text('feedback_id'),
      customer_id: text('customer_id'),
      usecase: text('usecase'),
      variant: text('variant'),
      version: text('version'),
      kind: text('kind'),
      severity: text('severity'),
      score: typeof value['score'] === 'number' ? value['score'] : null,
      message: text('message'),
      details: stringMap(value['details']),
      record_ids: Array.isArray(value['record_ids']) ? value['record_ids'].filter((id): id is string => typeof id === 'string') : [],
      event_time: value['event_time'] as number,
      produced_at: typeof value['produced_at'] === 'number' ? value['produced_at'] : (value['event_time'] as number),
    },
  };
}

export function toCustomerRecord(value: unknown): Checked<CustomerRecord> {
  if (!isRecord(value)) return { ok: false, reason: 'decoded value is not a record' };
  const bad = missing(value, ['record_id', 'customer_id'], ['event_time']);
  if (bad.length > 0) return { ok: false, reason: `CustomerRecord without valid ${bad.join(', ')}` };
  const text = (name: string): string => (typeof value[name] === 'string' ? value[name] : '');
  const nullableText = (name: string): string | null => (typeof value[name] === 'string' ? value[name] : null);
  return {
    ok: true,
    value: {
      record_id: text('record_id'),
      customer_id: text('customer_id'),
      source: text('source'),
      event_time: value['event_time'] as number,
      type: text('type'),
      amount: typeof value['amount'] === 'number' ? value['amount'] : null,
      currency: nullableText('currency'),
      attributes: stringMap(value['attributes']),
      ingested_at: typeof value['ingested_at'] === 'number' ? value['ingested_at'] : (value['event_time'] as number),
    },
  };
}
