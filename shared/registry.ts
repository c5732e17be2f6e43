/**
 * Schema registry client (@kafkajs/confluent-schema-registry) against any
 * Confluent-compatible API, here Apicurio's /apis/ccompat/v7.
 */
import { SchemaRegistry, SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import type { DiamondConfig } from './config.ts';
import { ServiceUnavailableError } from './errors.ts';
import { readSchema, Subjects, type ContractName } from './schemas.ts';

export function createRegistry(config: Pick<DiamondConfig, 'registry'>): SchemaRegistry {
  return new SchemaRegistry({ host: config.registry.url, retry: { retries: 2 } });
}

/** Resolves when the registry lists its subjects; throws ServiceUnavailableError otherwise. */
export async function checkRegistry(config: Pick<DiamondConfig, 'registry'>): Promise<{ subjects: number }> {
  const url = `${config.registry.url}/subjects`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
    const body: unknown = await response.json();
    if (!Array.isArray(body)) throw new Error(`GET ${url} did not answer a JSON array`);
    return { subjects: body.length };
  } catch (cause) {
    throw new ServiceUnavailableError('schema registry', config.registry.url, { cause });
  }
}

/**
 * Registers a contract under its subject with BACKWARD compatibility and returns its id.
 * Registering an identical schema again returns the existing id.
 */
export async function registerContract(registry: SchemaRegistry, name: ContractName, subject: string = Subjects[name]): Promise<number> {
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(readSchema(name)) },
    { subject, compatibility: COMPATIBILITY.BACKWARD },
  );
  return id;
}
