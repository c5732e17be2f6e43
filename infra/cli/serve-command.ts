/**
 * `diamond serve <side>`: runs one side's services in the foreground.
 * Each side adds its subcommand to `serveSubcommands` (one import + one entry).
 */
import type { Argv, CommandModule } from 'yargs';
import { serveUpstreamCommand } from './upstream-command.ts';
import { serveDownstreamCommand } from './downstream-command.ts';
import { serveOrchestratorCommand } from './orchestrator-command.ts';
import { servePlatformCommand } from './platform-command.ts';

export const serveSubcommands: CommandModule[] = [
  serveUpstreamCommand as CommandModule,
  serveDownstreamCommand as CommandModule,
  serveOrchestratorCommand,
  servePlatformCommand,
];

export const serveCommand: CommandModule = {
  command: 'serve <side>',
  describe: 'run the services of one side in the foreground',
  builder: (y: Argv) => serveSubcommands.reduce((argv, command) => argv.command(command), y).demandCommand(1),
  handler: () => undefined,
};
