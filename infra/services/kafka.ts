/** Kafka in KRaft mode (one combined broker + controller), jars from Maven Central. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHostPort, type DiamondConfig } from '../../shared/config.ts';
import { checkKafka } from '../../shared/kafka.ts';
import { runLogged } from '../../shared/install-cache.ts';
import { installMavenJars } from './artifacts.ts';
import { javaBinary, jvmMarker, servicePaths, type LocalService } from './service.ts';
import { Versions } from '../../shared/versions.ts';
import { kafkaScramFormatArgs, kafkaSecurityProperties } from './security.ts';

function firstBroker(config: DiamondConfig): { host: string; port: number } {
  return parseHostPort('DIAMOND_KAFKA_BROKERS', config.kafka.brokers[0] ?? '');
}

function serverProperties(config: DiamondConfig, logDir: string): string {
  const { port } = firstBroker(config);
  const controller = config.kafka.controllerPort;
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controller}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${logDir}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    // One partition: the first consumer-group join on a fresh broker is fast.
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
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

export const kafkaService: LocalService = {
  name: 'kafka',
  readyTimeoutMs: 90_000,
  address: (config) => config.kafka.brokers.join(','),
  host: (config) => firstBroker(config).host,
  check: async (config) => {
    await checkKafka(config);
  },
  prepare: async (ctx) => {
    const { config } = ctx;
    const libs = await installMavenJars('kafka', `kafka-${Versions.kafka}`, 'kafka.xml', {
      'kafka.version': Versions.kafka,
      'log4j.version': Versions.log4j,
      'slf4j.version': Versions.slf4j,
    }, ctx);
    const { dataDir } = servicePaths(config, 'kafka');
    const logDir = join(dataDir, 'logs');
    const confDir = join(dataDir, 'conf');
    mkdirSync(logDir, { recursive: true });
    mkdirSync(confDir, { recursive: true });
    const properties = join(confDir, 'server.properties');
    const log4j = join(confDir, 'log4j2.properties');
    // 0600: under DIAMOND_SECURITY=1 the file holds the broker's SCRAM password (security.ts).
    writeFileSync(properties, serverProperties(config, logDir) + kafkaSecurityProperties(config, firstBroker(config).port).join('\n'), { mode: 0o600 });
    writeFileSync(log4j, LOG4J2);
    const jvm = [
      '-Xms512m', '-Xmx512m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${log4j}`, jvmMarker(config, 'kafka'), '-cp', `${libs}/*`,
    ];
    if (!existsSync(join(logDir, 'meta.properties'))) {
      ctx.onStep?.('formatting KRaft storage');
      // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
      const clusterId = randomBytes(16).toString('base64url');
      await runLogged('kafka', javaBinary(config), [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', properties, '--ignore-formatted', ...kafkaScramFormatArgs(config)], ctx);
    }
    return {
      command: javaBinary(config),
      args: [...jvm, 'kafka.Kafka', properties],
      env: { ...process.env, JAVA_HOME: config.javaHome },
      marker: jvmMarker(config, 'kafka'),
    };
  },
};
