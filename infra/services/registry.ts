/**
 * Apicurio Registry serving the Confluent-compatible API at /apis/ccompat/v7. Storage is
 * kafkasql (schemas journaled in a Kafka topic), so ids survive a restart.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isLoopback, type DiamondConfig } from '../../shared/config.ts';
import { ServiceUnavailableError } from '../../shared/errors.ts';
import { checkRegistry } from '../../shared/registry.ts';
import { installApicurio, installRegistryJava } from './artifacts.ts';
import { jvmMarker, servicePaths, type LocalService } from './service.ts';
import { writeRegistrySecurity } from './security.ts';

export const REGISTRY_JOURNAL_TOPIC = 'diamond.registry.journal';

function registryUrl(config: DiamondConfig): URL {
  return new URL(config.registry.url);
}

export const registryService: LocalService = {
  name: 'registry',
  readyTimeoutMs: 90_000,
  address: (config) => config.registry.url,
  host: (config) => registryUrl(config).hostname,
  check: async (config) => {
    await checkRegistry(config);
    // The API answers before kafkasql has replayed its journal; a local instance is ready
    // only when its management readiness check (storage included) says UP.
    const url = registryUrl(config);
    if (!isLoopback(url.hostname)) return;
    const ready = `http://127.0.0.1:${config.registry.managementPort}/health/ready`;
    try {
      const response = await fetch(ready, { signal: AbortSignal.timeout(3000) });
      const body = (await response.json()) as { status?: string };
      if (!response.ok || body.status !== 'UP') throw new Error(`GET ${ready} answered ${response.status} ${body.status ?? ''}`);
    } catch (cause) {
      throw new ServiceUnavailableError('schema registry', config.registry.url, { cause, hint: 'it is starting: its storage is not ready yet' });
    }
  },
  prepare: async (ctx) => {
    const { config } = ctx;
    const home = await installApicurio(ctx);
    const javaHome = await installRegistryJava(ctx);
    const { dataDir } = servicePaths(config, 'registry');
    mkdirSync(dataDir, { recursive: true });
    const url = registryUrl(config);
    const props: Record<string, string> = {
      'quarkus.http.host': '127.0.0.1',
      'quarkus.http.port': url.port || '80',
      'quarkus.management.host': '127.0.0.1',
      'quarkus.management.port': String(config.registry.managementPort),
      'apicurio.storage.kind': 'kafkasql',
      'apicurio.kafkasql.bootstrap.servers': config.kafka.brokers.join(','),
      'apicurio.kafkasql.topic': REGISTRY_JOURNAL_TOPIC,
      'apicurio.kafkasql.snapshots.topic': 'diamond.registry.snapshots',
      // Ids behave like Confluent's (global ids, not content ids).
      'apicurio.ccompat.legacy-id-mode.enabled': 'false',
      'quarkus.log.console.json': 'false',
      'quarkus.log.level': 'INFO',
    };
    // Secured profile: https, basic auth, SASL to Kafka, in a 0600 file (never the command line).
    writeRegistrySecurity(config, dataDir, props['quarkus.http.port'] ?? '80');
    return {
      command: join(javaHome, 'bin', 'java'),
      args: [
        '-Xms128m', '-Xmx384m', '-XX:+UseSerialGC', '-Djava.awt.headless=true', jvmMarker(config, 'registry'),
        ...Object.entries(props).map(([key, value]) => `-D${key}=${value}`),
        '-jar', join(home, 'quarkus-run.jar'),
      ],
      cwd: dataDir,
      env: { ...process.env, JAVA_HOME: javaHome },
      marker: jvmMarker(config, 'registry'),
    };
  },
};
