/** `diamond services up | down [--purge] | status [--json] | logs <service>` */
import { createReadStream, existsSync, statSync, watch } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { loadConfig, type DiamondConfig, type Topology } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import { serviceByName, servicesDown, servicesStatus, servicesUp, type UpResult } from '../services/local-services.ts';
import { serviceNodes, servicePaths, SERVICE_NAMES, type ServiceName } from '../services/service.ts';
import { tailFile } from '../../shared/process-group.ts';
import { jsonOption, lineStream } from './output.ts';

const out = (line: string): void => {
  process.stdout.write(line + '\n');
};

interface TopologyArg { topology: Topology | undefined }

const topologyOption = { type: 'string', choices: ['single', 'cluster'] as const, describe: 'one node per service, or local clusters (default: DIAMOND_TOPOLOGY, else single)' } as const;

/** `--topology` stands for DIAMOND_TOPOLOGY (whose defaults follow it: home, ports, addresses). */
function servicesConfig({ topology }: TopologyArg): DiamondConfig {
  return loadConfig(topology ? { ...process.env, DIAMOND_TOPOLOGY: topology } : process.env);
}

function pids(nodes: UpResult['nodes']): string {
  if (nodes.length <= 1) return nodes[0]?.pid == null ? '' : ` pid ${nodes[0].pid}`;
  return ' ' + nodes.map((node) => `${node.name} ${node.pid === null ? 'down' : `pid ${node.pid}`}`).join(', ');
}

function describeUp(result: UpResult): string {
  const pid = pids(result.nodes);
  return `✔ ${result.name.padEnd(9)} ${result.address.padEnd(42)} ${result.outcome.padEnd(9)} ${result.seconds.toFixed(1).padStart(5)} s${pid}`;
}

interface UpArgs extends TopologyArg { json: boolean; service: string[] | undefined }

const up: CommandModule<object, UpArgs> = {
  command: 'up [service..]',
  describe: 'install (once) and start the local services, one at a time, and wait until each answers',
  builder: (y) => y
    .positional('service', { type: 'string', array: true, choices: SERVICE_NAMES, describe: 'only these services' })
    .option('topology', topologyOption)
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }),
  handler: async ({ json, service, topology }) => {
    const config = servicesConfig({ topology });
    const logger = createLogger(config, { fd: 2, bindings: { component: 'services' } });
    const started = performance.now();
    const results = await servicesUp(config, logger, {
      only: service?.length ? (service as ServiceName[]) : undefined,
      onStep: (name, message) => { if (!json) out(`… ${name.padEnd(9)} ${message}`); },
      onResult: (result) => { if (!json) out(describeUp(result)); },
    });
    if (json) out(JSON.stringify(results, null, 2));
    else out(`all services up in ${((performance.now() - started) / 1000).toFixed(1)} s — data and logs in ${config.home}`);
  },
};

const down: CommandModule<object, TopologyArg & { purge: boolean; json: boolean }> = {
  command: 'down',
  describe: 'stop the local services this checkout started (by their recorded pids)',
  builder: (y) => y
    .option('purge', { type: 'boolean', default: false, describe: 'also delete their data' })
    .option('topology', topologyOption)
    .option('json', { type: 'boolean', default: false }),
  handler: async ({ purge, json, topology }) => {
    const config = servicesConfig({ topology });
    const results = await servicesDown(config, { purge });
    if (json) return out(JSON.stringify(results, null, 2));
    for (const result of results) {
      const what = result.stopped ? `stopped pid ${result.pid}${result.forced ? ' (killed after the grace period)' : ''}` : 'not running';
      out(`${result.name.padEnd(9)} ${what}`);
    }
    if (purge) out(`data removed from ${config.home}/data`);
  },
};

const status: CommandModule<object, TopologyArg & { json: boolean }> = {
  command: 'status',
  describe: 'is each service answering at its address?',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print [{ name, address, healthy, pid, nodes }]' }).option('topology', topologyOption),
  handler: async ({ json, topology }) => {
    const config = servicesConfig({ topology });
    const statuses = await servicesStatus(config);
    if (json) out(JSON.stringify(statuses, null, 2));
    else for (const s of statuses) out(`${s.healthy ? '✔' : '✘'} ${s.name.padEnd(9)} ${s.address.padEnd(42)} ${s.healthy ? 'healthy' : 'down   '}${pids(s.nodes)}`);
    if (statuses.some((s) => !s.healthy)) process.exitCode = 3;
  },
};

const logs: CommandModule<object, TopologyArg & { service: string; node: number; follow: boolean; lines: number; json: boolean }> = {
  command: 'logs <service>',
  describe: "print a service's log file",
  builder: (y) => y
    .positional('service', { type: 'string', choices: SERVICE_NAMES, demandOption: true })
    .option('follow', { alias: 'f', type: 'boolean', default: false })
    .option('lines', { alias: 'n', type: 'number', default: 100 })
    .option('topology', topologyOption)
    .option('node', { type: 'number', default: 1, describe: "which node of a local cluster (1-based; Spark's master is 1)" })
    .option('json', { ...jsonOption, describe: 'one {"line": …} object per log line' }),
  handler: async ({ service, node, follow, lines, json, topology }) => {
    const config = servicesConfig({ topology });
    const found = serviceByName(service);
    const { name } = found;
    const nodes = serviceNodes(found, config);
    const chosen = nodes[node - 1];
    if (!chosen) throw new DiamondError(`${name} has ${nodes.length} node(s), not ${node}`, { code: 'DIAMOND_NO_LOG', hint: `use --node 1…${nodes.length}` });
    const paths = servicePaths(config, chosen.name);
    const file = chosen.name === 'spark' ? servicePaths(config, name).installLog : paths.logFile;
    if (!existsSync(file)) throw new DiamondError(`no log yet for ${name} (${file})`, { code: 'DIAMOND_NO_LOG', hint: 'start it with `npx diamond services up`' });
    const output = lineStream(json);
    output.write(tailFile(file, lines) + '\n');
    if (!follow) return output.end();
    let position = statSync(file).size;
    await new Promise<never>(() => {
      watch(file, () => {
        const size = statSync(file).size;
        if (size <= position) { position = size; return; }
        createReadStream(file, { start: position, end: size - 1, encoding: 'utf8' }).on('data', (chunk) => output.write(String(chunk)));
        position = size;
      });
    });
  },
};

export const servicesCommand: CommandModule = {
  command: 'services <command>',
  describe: 'local Kafka, schema registry, Cassandra, Redis and Spark',
  builder: (y: Argv) => y.command(up).command(down).command(status).command(logs).demandCommand(1),
  handler: () => undefined,
};
