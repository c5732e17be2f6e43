/** `diamond config [--json]`: the resolved configuration and where each value comes from. */
import type { CommandModule } from 'yargs';
import { loadConfig, settingDocs } from '../../shared/config.ts';

export const configCommand: CommandModule<object, { json: boolean }> = {
  command: 'config',
  describe: 'print the resolved configuration and its DIAMOND_* variables',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
  handler: ({ json }) => {
    const config = loadConfig(process.env);
    if (json) {
      process.stdout.write(JSON.stringify(config, null, 2) + '\n');
      return;
    }
    for (const doc of settingDocs(process.env)) {
      const value = process.env[doc.env] ?? `${doc.default} (default)`;
      process.stdout.write(`${doc.env.padEnd(34)} ${value}\n${''.padEnd(34)} ${doc.description}\n`);
    }
  },
};
