/**
 * Decodes Confluent-framed Avro (magic 0 + 4-byte schema id + payload) with the writer's
 * own schema, looked up by id, and tells a bad message (reject it) from an unreachable
 * registry (retry the batch) by error type — never by message text.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { DiamondError } from '../shared/errors.ts';

export type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

/** The registry did not answer (or answered 5xx): the batch is retried, the message is not rejected. */
export class RegistryUnavailableError extends DiamondError {
  constructor(cause: unknown) {
    super('schema registry did not answer while decoding', {
      code: 'DIAMOND_REGISTRY_UNAVAILABLE',
      hint: 'check DIAMOND_REGISTRY_URL and `diamond services status`; the writer retries the batch on its own',
      cause,
    });
  }
}

function httpStatus(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number') return error.status;
  return undefined;
}

export async function decodeWire(registry: SchemaRegistry, value: Buffer | null): Promise<Decoded> {
  if (!value || value.length < 5) return { ok: false, reason: `not Confluent wire format: ${value?.length ?? 0} bytes` };
  if (value[0] !== 0) return { ok: false, reason: `not Confluent wire format: magic byte ${value[0]}, expected 0` };
  const schemaId = value.readInt32BE(1);
  try {
    await registry.getSchema(schemaId); // cached after the first message of each writer version
  } catch (error) {
    const status = httpStatus(error);
    if (status === 404 || status === 422) return { ok: false, reason: `schema id ${schemaId} is not registered` };
    throw new RegistryUnavailableError(error);
  }
  try {
    return { ok: true, value: (await registry.decode(value)) as unknown };
  } catch (error) {
    return { ok: false, reason: `Avro payload does not decode with writer schema ${schemaId}: ${error instanceof Error ? error.message : String(error)}` };
  }
}
