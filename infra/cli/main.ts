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
import { backfillCommand, deployCommand, logsCommand, replayCommand, statusCommand, undeployCommand } from './orchestrator-command.ts';
import { eventsCommand } from './events-command.ts';
import { tokenCommand } from './token-command.ts';
import { topicCommand } from './topic-command.ts';
import { uiCommand } from './ui-command.ts';
import { runCommand } from './run-command.ts';
import { sqlCommand } from './sql-command.ts';
import { historyCommand } from './history-command.ts';
import { errorDocument, wantsJson } from './output.ts';

const json = wantsJson(process.argv);

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
    .command(backfillCommand)
    .command(logsCommand)
    .command(eventsCommand)
    .command(tokenCommand)
    .command(topicCommand)
    .command(uiCommand)
    .command(runCommand)
    .command(sqlCommand)
    .command(historyCommand)
    // --url/--token are the CLI's spelling of DIAMOND_CONTROL_URL/DIAMOND_TOKEN: set before any handler loads the config.
    .option('url', { type: 'string', global: true, describe: 'control API base URL (DIAMOND_CONTROL_URL), e.g. http://orchestrator:18070' })
    .option('token', { type: 'string', global: true, describe: 'control API bearer token (DIAMOND_TOKEN)' })
    .middleware((argv) => {
      if (typeof argv['url'] === 'string') process.env['DIAMOND_CONTROL_URL'] = argv['url'];
      if (typeof argv['token'] === 'string' && argv._[0] !== 'token') process.env['DIAMOND_TOKEN'] = argv['token'];
    })
    // Every command takes it: stdout then carries JSON only (output.ts).
    .option('json', { type: 'boolean', default: false, global: true, describe: 'machine-readable output: JSON on stdout, a failure as JSON on stderr' })
    .completion('completion', 'print a shell completion script (bash, zsh): npx diamond completion >> ~/.bashrc')
    .example('$0 up', 'start the services and the platform')
    .example('$0 deploy data_quality --wait', 'validate and run a use case; return once it processes')
    .example('$0 status --json', 'jobs, offsets, lag as JSON (exit 3 when a job needs attention)')
    .example('$0 events --follow', 'lifecycle events live')
    .example('$0 run customer_insights.customer_summary --param customer_id=acme --param since=7d', 'run a use case function, print its result')
    .epilogue('Exit codes: 0 done; 1 failed (the message says what to do); 2 bad arguments or configuration; 3 not healthy (status: a job crash-looping or stalled, or no orchestrator leads; services status: a service down). Every command takes --json.')
    .demandCommand(1, 'name a command, e.g. `diamond services up`')
    .strict()
    .help()
    .fail((message, error) => {
      if (error) throw error;
      if (json) process.stderr.write(JSON.stringify(errorDocument(new DiamondError(message, { code: 'DIAMOND_BAD_ARGUMENT', hint: 'run `diamond --help` for usage' }))) + '\n');
      else process.stderr.write(`${message}\n\nRun \`diamond --help\` for usage.\n`);
      process.exit(2);
    })
    .parseAsync();
} catch (error) {
  process.stderr.write(json ? `${JSON.stringify(errorDocument(error))}\n` : `diamond: ${errorMessage(error)}\n`);
  process.exitCode = error instanceof DiamondError && error.code === 'DIAMOND_CONFIG_INVALID' ? 2 : 1;
}
