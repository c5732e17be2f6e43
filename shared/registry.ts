/**
 * Schema registry client (@kafkajs/confluent-schema-registry) against any
 * Confluent-compatible API, here Apicurio's /apis/ccompat/v7.
 */
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { SchemaRegistry, SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import type { DiamondConfig } from './config.ts';
import { ServiceUnavailableError } from './errors.ts';
import { readSchema, Subjects, type ContractName } from './schemas.ts';
import { readCaFile, readSecretFile } from './secret-file.ts';

/** Basic auth (password read from its file) and an https agent trusting the configured CA, when set. */
function registryConnection(config: Pick<DiamondConfig, 'registry'>): { auth?: { username: string; password: string }; agent?: HttpsAgent } {
  const { auth, caFile } = config.registry;
  const ca = readCaFile('DIAMOND_REGISTRY_CA_FILE', caFile);
  return {
    ...(auth ? { auth: { username: auth.username, password: readSecretFile('DIAMOND_REGISTRY_PASSWORD_FILE', auth.passwordFile) } } : {}),
    ...(ca !== undefined ? { agent: new HttpsAgent({ ca, keepAlive: true }) } : {}),
  };
}

export function createRegistry(config: Pick<DiamondConfig, 'registry'>): SchemaRegistry {
  return new SchemaRegistry({ host: config.registry.url, retry: { retries: 2 }, ...registryConnection(config) });
}

/**
 * GET on the registry with the client's auth and CA. node:http rather than fetch: fetch takes
 * no CA without undici's dispatcher, which is not a dependency here.
 */
function registryGet(config: Pick<DiamondConfig, 'registry'>, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const { auth, agent } = registryConnection(config);
  const url = new URL(`${config.registry.url}${path}`);
  const headers: Record<string, string> = auth ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {};
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, timeout: timeoutMs, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url.origin}${url.pathname} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Resolves when the registry lists its subjects; throws ServiceUnavailableError otherwise (401: the credentials were refused). */
export async function checkRegistry(config: Pick<DiamondConfig, 'registry'>): Promise<{ subjects: number }> {
  const url = `${config.registry.url}/subjects`;
  try {
    const response = await registryGet(config, '/subjects', 3000);
    if (response.status === 401 || response.status === 403) {
      throw new ServiceUnavailableError('schema registry', config.registry.url, { hint: `the registry refused our credentials (${response.status}): check DIAMOND_REGISTRY_USERNAME and the file DIAMOND_REGISTRY_PASSWORD_FILE names` });
    }
    if (response.status < 200 || response.status >= 300) throw new Error(`GET ${url} answered ${response.status}`);
    const body: unknown = JSON.parse(response.body);
    if (!Array.isArray(body)) throw new Error(`GET ${url} did not answer a JSON array`);
    return { subjects: body.length };
  } catch (cause) {
    if (cause instanceof ServiceUnavailableError) throw cause;
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
