/**
 * The `diamond` CLI. Each command loads the config once and passes it down.
 *   npx diamond services up
 *   npx diamond services status --json
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DiamondError, errorMessage } from '../../shared/errors.ts';
import { servicesCommand } from './services-command.ts';
import { kafkaCommand } from './kafka-command.ts';
import { downCommand, upCommand } from './platform-command.ts';
import { configCommand } from './config-command.ts';
import { abCommand, customerCommand, rolloutCommand } from './downstream-command.ts';
import { serveCommand } from './serve-command.ts';
import { ingestCommand, sourceCommand } from './upstream-command.ts';
import { usecaseCommand } from './usecase-command.ts';
import { deployCommand, logsCommand, replayCommand, statusCommand, undeployCommand } from './orchestrator-command.ts';
import { eventsCommand } from './events-command.ts';
import { tokenCommand } from './token-command.ts';

try {
  await yargs(hideBin(process.argv))
    .scriptName('diamond')
    .command(upCommand)
    .command(downCommand)
    .command(servicesCommand)
    .command(kafkaCommand)
    .command(configCommand)
    .command(rolloutCommand)
    .command(customerCommand)
    .command(abCommand)
    .command(serveCommand)
    .command(sourceCommand)
    .command(ingestCommand)
    .command(usecaseCommand)
    .command(deployCommand)
    .command(undeployCommand)
    .command(statusCommand)
    .command(replayCommand)
    .command(logsCommand)
    .command(eventsCommand)
    .command(tokenCommand)
    .demandCommand(1, 'name a command, e.g. `diamond services up`')
    .strict()
    .help()
    .fail((message, error) => {
      if (error) throw error;
      process.stderr.write(`${message}\n\nRun \`diamond --help\` for usage.\n`);
      process.exit(2);
    })
    .parseAsync();
} catch (error) {
  process.stderr.write(`diamond: ${errorMessage(error)}\n`);
  process.exitCode = error instanceof DiamondError && error.code === 'DIAMOND_CONFIG_INVALID' ? 2 : 1;
}
