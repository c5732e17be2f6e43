/**
 * `diamond usecase env <name>`: the Python interpreter that has the SDK, the use case's own
 * packages and the platform's, for an IDE or a notebook (usecase-interpreter.ts). stdout is
 * its path (or, with --json, what is on its path); building steps go to stderr.
 *
 *   code --python "$(npx diamond usecase env late_payments)"   # or paste it into "Select Interpreter"
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { sparkService } from '../services/spark.ts';
import { jsonOption, printResult } from './output.ts';
import { prepareUsecaseInterpreter } from './usecase-interpreter.ts';
import { rootOption, usecaseFolder } from './usecase-folder.ts';

export const usecaseEnvCommand: CommandModule<object, { name: string; root: string | undefined; json: boolean }> = {
  command: 'env <name>',
  describe: "print the Python interpreter with the SDK and the use case's packages (for IDEs and notebooks)",
  builder: (y) => y
    .positional('name', { type: 'string', demandOption: true })
    .option('root', rootOption)
    .option('json', { ...jsonOption, describe: 'python, sitePackages, sdk, usecase … as JSON' })
    .example('$0 usecase env late_payments', 'the path of the interpreter')
    .example('$0 usecase env late_payments --json', 'what is on its path'),
  handler: async ({ name, root, json }) => {
    const config = loadConfig(process.env);
    const folder = usecaseFolder(config, name, root);
    if (!existsSync(join(folder, 'usecase.yaml'))) {
      throw new DiamondError(`no use case ${name} (no ${folder}/usecase.yaml)`, { code: 'DIAMOND_USECASE_UNKNOWN', hint: `create it with \`npx diamond usecase new ${name}\`` });
    }
    await sparkService.check(config).catch((cause: unknown) => {
      throw new DiamondError('the Python environment is not installed', { code: 'DIAMOND_PYTHON_MISSING', hint: 'run `npx diamond services up spark` once', cause });
    });
    const interpreter = await prepareUsecaseInterpreter(config, folder, (step) => process.stderr.write(`── ${step}\n`));
    if (!json) {
      const packages = interpreter.requirements.length > 0 ? interpreter.requirements.join(', ') : 'none of its own';
      process.stderr.write(`── ${name}: the SDK (${interpreter.sdk}), its packages (${packages}) and the platform's; JAVA_HOME and the Spark jars are set for run_usecase\n`);
    }
    printResult(json, interpreter, interpreter.python);
  },
};
