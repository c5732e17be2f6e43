/**
 * The envelope of records.rejected (DESIGN.md §3): which source, when, every reason, and the
 * raw input exactly as received. Text that is valid UTF-8 is kept as text; anything else is
 * kept byte for byte as base64 (`raw_encoding` says which), so nothing is ever lost.
 */
import type { Reason } from './normalize.ts';

export interface RejectedEnvelope {
  readonly source: string;
  /** ISO-8601, UTC. */
  readonly received_at: string;
  /** Which ingest path saw it: http, file or raw-topic. */
  readonly via: 'http' | 'file' | 'raw-topic';
  /** Where in the input it was: request index, file and line, or topic/partition/offset. */
  readonly location: Readonly<Record<string, string | number>>;
  readonly reasons: readonly Reason[];
  readonly raw: string;
  readonly raw_encoding: 'utf-8' | 'base64';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeRaw(raw: Buffer): Pick<RejectedEnvelope, 'raw' | 'raw_encoding'> {
  try {
    return { raw: strictUtf8.decode(raw), raw_encoding: 'utf-8' };
  } catch {
    return { raw: raw.toString('base64'), raw_encoding: 'base64' };
  }
}

/** The raw bytes back from an envelope (operators replaying a fixed record use this). */
export function decodeRaw(envelope: Pick<RejectedEnvelope, 'raw' | 'raw_encoding'>): Buffer {
  return Buffer.from(envelope.raw, envelope.raw_encoding === 'base64' ? 'base64' : 'utf8');
}

export function rejectedEnvelope(fields: Omit<RejectedEnvelope, 'raw' | 'raw_encoding' | 'received_at'> & { receivedAt: number; raw: Buffer }): RejectedEnvelope {
  const { receivedAt, raw, ...rest } = fields;
  return { ...rest, received_at: new Date(receivedAt).toISOString(), ...encodeRaw(raw) };
}
