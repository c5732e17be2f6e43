/**
 * Kafka in KRaft mode, jars from Maven Central: one combined broker + controller, or in the
 * cluster topology one per address of DIAMOND_KAFKA_BROKERS (three on 127.0.0.1–3), all three
 * voters of the controller quorum, replication DIAMOND_KAFKA_REPLICATION_FACTOR with
 * min.insync.replicas one less: with producers at acks=all, a broker can die and nothing
 * acknowledged is lost.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseHostPort, type DiamondConfig } from '../../shared/config.ts';
import { checkKafka } from '../../shared/kafka.ts';
import { runLogged } from '../../shared/install-cache.ts';
import { installMavenJars } from './artifacts.ts';
import { javaBinary, jvmMarker, numberedNodes, servicePaths, type LocalService, type ServiceNode } from './service.ts';
import { ServiceUnavailableError } from '../../shared/errors.ts';
import { Versions } from '../../shared/versions.ts';
import { kafkaScramFormatArgs, kafkaSecurityProperties } from './security.ts';

function firstBroker(config: DiamondConfig): { host: string; port: number } {
  return parseHostPort('DIAMOND_KAFKA_BROKERS', config.kafka.brokers[0] ?? '');
}

/** The local brokers: each address of DIAMOND_KAFKA_BROKERS in the cluster topology, else the first. */
function localBrokers(config: DiamondConfig): { host: string; port: number }[] {
  if (config.topology !== 'cluster') return [firstBroker(config)];
  return config.kafka.brokers.map((broker) => parseHostPort('DIAMOND_KAFKA_BROKERS', broker));
}

function serverProperties(config: DiamondConfig, node: ServiceNode, logDir: string): string {
  const brokers = localBrokers(config);
  const self = brokers[node.index] ?? firstBroker(config);
  const controller = config.kafka.controllerPort;
  const voters = brokers.map((broker, index) => `${index + 1}@${broker.host}:${controller}`).join(',');
  const replicas = Math.min(config.kafka.replicationFactor, brokers.length);
  const minIsr = Math.max(1, replicas - 1);
  return [
    'process.roles=broker,controller',
    `node.id=${node.index + 1}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://${self.host}:${self.port},CONTROLLER://${self.host}:${controller}`,
    `advertised.listeners=PLAINTEXT://${self.host}:${self.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${logDir}`,
    'num.partitions=1',
    `default.replication.factor=${replicas}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${replicas}`,
    // One partition: the first consumer-group join on a fresh broker is fast.
    'offsets.topic.num.partitions=1',
    `transaction.state.log.replication.factor=${replicas}`,
    `transaction.state.log.min.isr=${minIsr}`,
    `share.coordinator.state.topic.replication.factor=${replicas}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    // A broker that comes back catches up before it leads again.
    'unclean.leader.election.enable=false',
    // The default 3 s delay slows every consumer-group start.
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=true',
    'delete.topic.enable=true',
    'num.network.threads=2',
    'num.io.threads=4',
    'log.retention.hours=168',
    '',
  ].join('\n');
}

const LOG4J2 = `# Console logging for the local broker; the launcher sends stdout to the service log file.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
`;

/** Every node of a cluster is formatted with the same cluster id, made once. */
function clusterId(config: DiamondConfig): string {
  const file = join(config.home, 'data', 'kafka-cluster-id');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
  const id = randomBytes(16).toString('base64url');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, id + '\n');
  return id;
}

export const kafkaService: LocalService = {
  name: 'kafka',
  readyTimeoutMs: 90_000,
  address: (config) => config.kafka.brokers.join(','),
  host: (config) => firstBroker(config).host,
  nodes: (config) => numberedNodes('kafka', localBrokers(config).length),
  check: async (config) => {
    const { brokers } = await checkKafka(config);
    const expected = localBrokers(config).length;
    if (config.topology === 'cluster' && brokers < expected) {
      throw new ServiceUnavailableError('Kafka', config.kafka.brokers.join(','), { hint: `${brokers} of its ${expected} brokers are in the cluster` });
    }
  },
  prepare: async (ctx, node) => {
    const { config } = ctx;
    const libs = await installMavenJars('kafka', `kafka-${Versions.kafka}`, 'kafka.xml', {
      'kafka.version': Versions.kafka,
      'log4j.version': Versions.log4j,
      'slf4j.version': Versions.slf4j,
    }, ctx);
    const { dataDir } = servicePaths(config, node.name);
    const logDir = join(dataDir, 'logs');
    const confDir = join(dataDir, 'conf');
    mkdirSync(logDir, { recursive: true });
    mkdirSync(confDir, { recursive: true });
    const properties = join(confDir, 'server.properties');
    const log4j = join(confDir, 'log4j2.properties');
    // 0600: under DIAMOND_SECURITY=1 the file holds the broker's SCRAM password (security.ts).
    writeFileSync(properties, serverProperties(config, node, logDir) + kafkaSecurityProperties(config, firstBroker(config).port).join('\n'), { mode: 0o600 });
    writeFileSync(log4j, LOG4J2);
    const jvm = [
      '-Xms512m', '-Xmx512m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${log4j}`, jvmMarker(config, node.name), '-cp', `${libs}/*`,
    ];
    if (!existsSync(join(logDir, 'meta.properties'))) {
      ctx.onStep?.('formatting KRaft storage');
      await runLogged('kafka', javaBinary(config), [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId(config), '-c', properties, '--ignore-formatted', ...kafkaScramFormatArgs(config)], ctx);
    }
    return {
      command: javaBinary(config),
      args: [...jvm, 'kafka.Kafka', properties],
      env: { ...process.env, JAVA_HOME: config.javaHome },
      marker: jvmMarker(config, node.name),
    };
  },
};
