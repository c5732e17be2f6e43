/** Cassandra 5 from the cassandra-all jars on Maven Central, one node on loopback, Java 17. */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkCassandra } from '../../shared/cassandra.ts';
import { parseHostPort, type DiamondConfig } from '../../shared/config.ts';
import { ServiceStartError } from '../../shared/errors.ts';
import { installMavenJars } from './artifacts.ts';
import { javaBinary, jvmMarker, servicePaths, type LocalService } from './service.ts';
import { cassandraAuthenticator, cassandraSecurityYaml, provisionCassandraRole } from './security.ts';
import { Versions } from '../../shared/versions.ts';

function nativeEndpoint(config: DiamondConfig): { host: string; port: number } {
  return parseHostPort('DIAMOND_CASSANDRA_CONTACT_POINTS', config.cassandra.contactPoints[0] ?? '');
}

function cassandraYaml(config: DiamondConfig, dir: string): string {
  const storagePort = config.cassandra.storagePort;
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
      - seeds: "127.0.0.1:${storagePort}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: ${storagePort}
native_transport_port: ${nativeEndpoint(config).port}
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

export const cassandraService: LocalService = {
  name: 'cassandra',
  readyTimeoutMs: 180_000,
  address: (config) => config.cassandra.contactPoints.join(','),
  host: (config) => nativeEndpoint(config).host,
  check: async (config) => {
    await provisionCassandraRole(config); // secured profile: the clients' role, once
    await checkCassandra(config);
  },
  prepare: async (ctx) => {
    const { config } = ctx;
    const libs = await installMavenJars('cassandra', `cassandra-${Versions.cassandra}`, 'cassandra.xml', { 'cassandra.version': Versions.cassandra }, ctx);
    const jamm = readdirSync(libs).find((file) => /^jamm-.*\.jar$/.test(file));
    if (!jamm) throw new ServiceStartError('cassandra', `no jamm agent jar in ${libs}`, { hint: `remove ${libs} and run \`diamond services up\` again` });
    const { dataDir } = servicePaths(config, 'cassandra');
    const confDir = join(dataDir, 'conf');
    mkdirSync(confDir, { recursive: true });
    const yaml = join(confDir, 'cassandra.yaml');
    writeFileSync(yaml, cassandraYaml(config, dataDir), { mode: 0o600 }); // secured: holds the keystore password
    writeFileSync(join(confDir, 'logback.xml'), LOGBACK);
    return {
      command: javaBinary(config),
      args: [
        '-Xms1g', '-Xmx1g', '-Xss512k', '-XX:+UseG1GC', '-XX:+ParallelRefProcEnabled', '-XX:MaxGCPauseMillis=300',
        '-XX:+HeapDumpOnOutOfMemoryError', '-Djava.net.preferIPv4Stack=true', '-Djava.awt.headless=true',
        ...JAVA17_ACCESS,
        `-javaagent:${join(libs, jamm)}`,
        `-Dcassandra.config=file://${yaml}`,
        `-Dcassandra.storagedir=${dataDir}`,
        `-Dcassandra.logdir=${join(dataDir, 'logs')}`,
        `-Dlogback.configurationFile=${join(confDir, 'logback.xml')}`,
        '-Dcassandra-foreground=yes',
        // One node: nothing to gossip with, so do not wait for it.
        '-Dcassandra.skip_wait_for_gossip_to_settle=0',
        '-Dcassandra.ring_delay_ms=1000',
        '-Dcassandra.superuser_setup_delay_ms=0',
        `-Dcassandra.jmx.local.port=${config.cassandra.jmxPort}`,
        jvmMarker(config, 'cassandra'),
        '-cp', `${confDir}:${libs}/*`,
        'org.apache.cassandra.service.CassandraDaemon',
      ],
      env: { ...process.env, JAVA_HOME: config.javaHome },
      marker: jvmMarker(config, 'cassandra'),
    };
  },
};
