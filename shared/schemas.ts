/**
 * The Avro data contracts. The .avsc files under shared/schemas/ are the single source:
 * TypeScript reads them here, the Python SDK reads the same files.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCHEMA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'schemas');

export interface AvroRecordSchema {
  readonly type: 'record';
  readonly name: string;
  readonly namespace?: string;
  readonly doc?: string;
  readonly fields: readonly { readonly name: string; readonly type: unknown; readonly default?: unknown; readonly doc?: string }[];
}

const files = { CustomerRecord: 'customer_record.avsc', Feedback: 'feedback.avsc' } as const;
export type ContractName = keyof typeof files;

/** Subject of each contract in the registry (TopicNameStrategy: `<topic>-value`). */
export const Subjects = {
  CustomerRecord: 'records.normalized-value',
  Feedback: 'feedback.raw-value',
} as const satisfies Record<ContractName, string>;

export function readSchema(name: ContractName): AvroRecordSchema {
  return JSON.parse(readFileSync(join(SCHEMA_DIR, files[name]), 'utf8')) as AvroRecordSchema;
}

/** Wire-shaped TypeScript views of the contracts (timestamps are epoch millis). */
export interface CustomerRecord {
  record_id: string;
  customer_id: string;
  source: string;
  event_time: number;
  type: string;
  amount: number | null;
  currency: string | null;
  attributes: Record<string, string>;
  ingested_at: number;
}

export interface Feedback {
  feedback_id: string;
  customer_id: string;
  usecase: string;
  variant: string;
  version: string;
  kind: string;
  severity: string;
  score: number | null;
  message: string;
  details: Record<string, string>;
  record_ids: string[];
  event_time: number;
  produced_at: number;
}
