/**
 * Cassandra 5 from the cassandra-all jars on Maven Central, Java 17: one node on loopback, or
 * in the cluster topology a ring of one node per address of DIAMOND_CASSANDRA_CONTACT_POINTS
 * (127.0.0.1–3, same ports), started one at a time, tokens spread evenly.
 */
import { connect } from 'node:net';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkCassandra } from '../../shared/cassandra.ts';
import { parseHostPort, type DiamondConfig } from '../../shared/config.ts';
import { ServiceStartError, ServiceUnavailableError } from '../../shared/errors.ts';
import { installMavenJars } from './artifacts.ts';
import { javaBinary, jvmMarker, numberedNodes, servicePaths, type LocalService, type ServiceNode } from './service.ts';
import { cassandraAuthenticator, cassandraSecurityYaml, provisionCassandraRole } from './security.ts';
import { Versions } from '../../shared/versions.ts';

function nativeEndpoint(config: DiamondConfig): { host: string; port: number } {
  return parseHostPort('DIAMOND_CASSANDRA_CONTACT_POINTS', config.cassandra.contactPoints[0] ?? '');
}

function localNodes(config: DiamondConfig): { host: string; port: number }[] {
  if (config.topology !== 'cluster') return [nativeEndpoint(config)];
  return config.cassandra.contactPoints.map((point) => parseHostPort('DIAMOND_CASSANDRA_CONTACT_POINTS', point));
}

/** Evenly spread Murmur3 tokens (one per node): a balanced ring without vnodes. */
function initialToken(index: number, count: number): string {
  const span = 2n ** 64n / BigInt(count);
  return String(-(2n ** 63n) + span * BigInt(index));
}

function cassandraYaml(config: DiamondConfig, node: ServiceNode, dir: string): string {
  const storagePort = config.cassandra.storagePort;
  const nodes = localNodes(config);
  const self = nodes[node.index] ?? nativeEndpoint(config);
  const seed = nodes[0] ?? self;
  // cassandra.yaml rejects unknown keys; this is the small set a single test node needs.
  return `cluster_name: diamond-local
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${seed.host}:${storagePort}"
listen_address: ${self.host}
rpc_address: ${self.host}
storage_port: ${storagePort}
native_transport_port: ${self.port}${nodes.length > 1 ? `
initial_token: ${initialToken(node.index, nodes.length)}
# A new ring is empty: nothing to stream in on a first start.
auto_bootstrap: false` : ''}
start_native_transport: true
data_file_directories:
  - ${join(dir, 'data')}
commitlog_directory: ${join(dir, 'commitlog')}
saved_caches_directory: ${join(dir, 'saved_caches')}
hints_directory: ${join(dir, 'hints')}
cdc_raw_directory: ${join(dir, 'cdc_raw')}
authenticator: ${cassandraAuthenticator(config)}
authorizer: AllowAllAuthorizer
auto_snapshot: false
concurrent_compactors: 1
disk_failure_policy: stop
commit_failure_policy: stop
${cassandraSecurityYaml(config)}`;
}

const LOGBACK = `<configuration scan="false">
  <!-- Console only: the launcher sends stdout to the service log file. -->
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
`;

/** The flags of Cassandra's conf/jvm17-server.options that a Java 17 node needs to start. */
const JAVA17_ACCESS = [
  '--add-exports', 'java.base/jdk.internal.misc=ALL-UNNAMED',
  '--add-exports', 'java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED',
  '--add-exports', 'java.rmi/sun.rmi.registry=ALL-UNNAMED',
  '--add-exports', 'java.rmi/sun.rmi.server=ALL-UNNAMED',
  '--add-exports', 'java.sql/java.sql=ALL-UNNAMED',
  '--add-exports', 'java.base/java.lang.ref=ALL-UNNAMED',
  '--add-exports', 'jdk.unsupported/sun.misc=ALL-UNNAMED',
  '--add-exports', 'jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED',
  '--add-exports', 'jdk.attach/sun.tools.attach=ALL-UNNAMED',
  ...[
    'java.base/java.lang.module', 'java.base/jdk.internal.loader', 'java.base/jdk.internal.ref',
    'java.base/jdk.internal.reflect', 'java.base/jdk.internal.math', 'java.base/jdk.internal.module',
    'java.base/jdk.internal.util.jar', 'jdk.management/com.sun.management.internal', 'java.base/sun.nio.ch',
    'java.base/java.io', 'java.base/java.lang.reflect', 'jdk.compiler/com.sun.tools.javac',
    'java.base/java.lang', 'java.base/java.util',
  ].flatMap((pkg) => ['--add-opens', `${pkg}=ALL-UNNAMED`]),
  '-Djdk.attach.allowAttachSelf=true',
  '-Dio.netty.tryReflectionSetAccessible=true',
  '-Dio.netty.allocator.useCacheForAllThreads=true',
  '-Dio.netty.allocator.maxOrder=11',
];

/** A node is up when its CQL port accepts connections (it opens last, after it joined the ring). */
function nativePortOpen(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => socket.destroy(new Error(`no answer from ${host}:${port}`)));
    socket.once('error', reject);
  });
}

export const cassandraService: LocalService = {
  name: 'cassandra',
  readyTimeoutMs: 180_000,
  address: (config) => config.cassandra.contactPoints.join(','),
  host: (config) => nativeEndpoint(config).host,
  nodes: (config) => numberedNodes('cassandra', localNodes(config).length),
  check: async (config) => {
    await provisionCassandraRole(config); // secured profile: the clients' role, once
    await checkCassandra(config);
    if (config.topology !== 'cluster') return;
    // The ring is whole when every node serves CQL (a node opens it last, once it joined).
    const nodes = localNodes(config);
    const down = (await Promise.all(nodes.map((node) => nativePortOpen(node.host, node.port).then(() => null, () => `${node.host}:${node.port}`)))).filter((address) => address !== null);
    if (down.length > 0) {
      throw new ServiceUnavailableError('Cassandra', config.cassandra.contactPoints.join(','), { hint: `${nodes.length - down.length} of its ${nodes.length} nodes are up (not ${down.join(', ')})` });
    }
  },
  checkNode: async (config, node) => {
    const self = localNodes(config)[node.index] ?? nativeEndpoint(config);
    await nativePortOpen(self.host, self.port);
  },
  prepare: async (ctx, node) => {
    const { config } = ctx;
    const libs = await installMavenJars('cassandra', `cassandra-${Versions.cassandra}`, 'cassandra.xml', { 'cassandra.version': Versions.cassandra }, ctx);
    const jamm = readdirSync(libs).find((file) => /^jamm-.*\.jar$/.test(file));
    if (!jamm) throw new ServiceStartError('cassandra', `no jamm agent jar in ${libs}`, { hint: `remove ${libs} and run \`diamond services up\` again` });
    const { dataDir } = servicePaths(config, node.name);
    const cluster = config.topology === 'cluster';
    const confDir = join(dataDir, 'conf');
    mkdirSync(confDir, { recursive: true });
    const yaml = join(confDir, 'cassandra.yaml');
    writeFileSync(yaml, cassandraYaml(config, node, dataDir), { mode: 0o600 }); // secured: holds the keystore password
    writeFileSync(join(confDir, 'logback.xml'), LOGBACK);
    return {
      command: javaBinary(config),
      args: [
        ...(cluster ? ['-Xms768m', '-Xmx768m'] : ['-Xms1g', '-Xmx1g']), '-Xss512k', '-XX:+UseG1GC', '-XX:+ParallelRefProcEnabled', '-XX:MaxGCPauseMillis=300',
        '-XX:+HeapDumpOnOutOfMemoryError', '-Djava.net.preferIPv4Stack=true', '-Djava.awt.headless=true',
        ...JAVA17_ACCESS,
        `-javaagent:${join(libs, jamm)}`,
        `-Dcassandra.config=file://${yaml}`,
        `-Dcassandra.storagedir=${dataDir}`,
        `-Dcassandra.logdir=${join(dataDir, 'logs')}`,
        `-Dlogback.configurationFile=${join(confDir, 'logback.xml')}`,
        '-Dcassandra-foreground=yes',
        // Peers are on this machine: gossip settles at once, so do not wait for it.
        '-Dcassandra.skip_wait_for_gossip_to_settle=0',
        '-Dcassandra.ring_delay_ms=1000',
        // Nodes of one fresh ring may join within seconds of each other.
        ...(cluster ? ['-Dcassandra.consistent.rangemovement=false'] : []),
        '-Dcassandra.superuser_setup_delay_ms=0',
        // JMX listens on 127.0.0.1 whatever the node's address: one port per node.
        `-Dcassandra.jmx.local.port=${config.cassandra.jmxPort + node.index}`,
        jvmMarker(config, node.name),
        '-cp', `${confDir}:${libs}/*`,
        'org.apache.cassandra.service.CassandraDaemon',
      ],
      env: { ...process.env, JAVA_HOME: config.javaHome },
      marker: jvmMarker(config, node.name),
    };
  },
};
