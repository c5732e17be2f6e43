/**
 * `diamond kafka <tool> …`: Kafka's own command-line tools against the configured brokers
 * (their jars are installed on first use). Job groups are `uc.<usecase>.<variant>`:
 *   npx diamond kafka consumer-groups --describe --group uc.data_quality.A
 *   npx diamond kafka console-consumer --topic records.rejected --from-beginning --max-messages 5
 *   npx diamond kafka topics --list
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { installMavenJars } from '../services/artifacts.ts';
import { javaBinary } from '../services/service.ts';
import { Versions } from '../../shared/versions.ts';

const TOOLS = {
  'consumer-groups': 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
  'console-consumer': 'org.apache.kafka.tools.consumer.ConsoleConsumer',
  topics: 'org.apache.kafka.tools.TopicCommand',
} as const;

export const kafkaCommand: CommandModule<object, { tool: string; args: (string | number)[]; json: boolean }> = {
  command: 'kafka <tool> [args..]',
  describe: "Kafka's own tools: consumer-groups (lag of each job's group), console-consumer, topics",
  builder: (y) => y
    .positional('tool', { type: 'string', choices: Object.keys(TOOLS), demandOption: true })
    .positional('args', { type: 'string', array: true, default: [] })
    .option('json', { type: 'boolean', default: false, describe: "the tool's output as {tool, args, exitCode, lines} (Kafka's tools print text)" })
    .parserConfiguration({ 'unknown-options-as-args': true }).strict(false),
  handler: async ({ tool, args, json }) => {
    const config = loadConfig(process.env);
    const logFile = join(config.home, 'logs', 'kafka-tools-install.log');
    const libs = await installMavenJars('kafka', `kafka-tools-${Versions.kafka}`, 'kafka-tools.xml', {
      'kafka.version': Versions.kafka, 'log4j.version': Versions.log4j, 'slf4j.version': Versions.slf4j,
    }, { config, logFile, onStep: (step) => process.stderr.write(`${step}\n`) });
    const child = spawn(javaBinary(config), [
      `-Dlog4j2.configurationFile=${join(config.projectRoot, 'infra', 'services', 'spark-log4j2.properties')}`,
      '-cp', `${libs}/*`, TOOLS[tool as keyof typeof TOOLS],
      '--bootstrap-server', config.kafka.brokers.join(','), ...args.map(String),
    ], { stdio: ['inherit', json ? 'pipe' : 'inherit', 'inherit'] });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code ?? 1));
    });
    if (json) process.stdout.write(JSON.stringify({ tool, args: args.map(String), exitCode, lines: output.split('\n').filter((line) => line.length > 0) }, null, 2) + '\n');
    process.exitCode = exitCode;
  },
};
