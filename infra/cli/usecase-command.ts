/**
 * `diamond usecase new <name>`: scaffold a working use case folder from the SDK template.
 * `diamond usecase test <name>`: its pytest suite, then a dry run over sample.jsonl on a
 * local SparkSession (no Kafka), printing the feedback rows it would emit, then every record
 * its feedback() raised on (file, line, message, the record) and a summary.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { writeJobConnections } from '../../shared/job-connections.ts';
import { DiamondError } from '../../shared/errors.ts';
import { pythonEnvironment, pythonProcessEnv, sparkSubmit } from '../../shared/runtime-paths.ts';
import { sparkService } from '../services/spark.ts';
import { prepareUsecaseEnv, usecaseSparkSettings } from '../orchestrator/usecase-env.ts';
import { jsonOption, printLine, printResult } from './output.ts';
import { formatRecordFailures, readRecordFailures, RECORD_FAILURES_ENV } from './record-failures.ts';
import { usecaseEnvCommand } from './usecase-env-command.ts';
import { rootOption, usecaseFolder } from './usecase-folder.ts';

const NAME = /^[a-z][a-z0-9_]{0,62}$/;

function fillTemplate(dir: string, name: string): void {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) fillTemplate(path, name);
    else writeFileSync(path, readFileSync(path, 'utf8').replaceAll('{{name}}', name));
  }
}

const scaffold: CommandModule<object, { name: string; root: string | undefined; json: boolean }> = {
  command: 'new <name>',
  describe: 'create usecases/<name> with a working per-record job, sample data and a test',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true, describe: 'lower_snake_case' }).option('root', rootOption).option('json', jsonOption),
  handler: ({ name, root, json }) => {
    const config = loadConfig(process.env);
    if (!NAME.test(name) || name === 'sdk') {
      throw new DiamondError(`"${name}" is not a use case name`, { code: 'DIAMOND_USECASE_NAME', hint: 'use lower_snake_case letters, digits and _, e.g. late_payments' });
    }
    const target = usecaseFolder(config, name, root);
    if (existsSync(target)) throw new DiamondError(`${relative(process.cwd(), target)} already exists`, { code: 'DIAMOND_USECASE_EXISTS', hint: 'pick another name, or edit that folder' });
    cpSync(join(config.projectRoot, 'usecases', 'sdk', 'template'), target, { recursive: true });
    fillTemplate(target, name);
    const shown = relative(process.cwd(), target) || target;
    if (json) return printResult(true, { usecase: name, folder: target, files: ['usecase.yaml', 'job.py', 'sample.jsonl', 'tests/test_job.py'] }, '');
    process.stdout.write([
      `created ${shown}/`,
      '  usecase.yaml      name, owner, trigger, variants, params',
      '  job.py            your logic: feedback(record, ctx) or transform(records, ctx)',
      '  sample.jsonl      records for the dry run',
      '  tests/test_job.py pytest on sample data',
      '',
      `next: edit ${shown}/job.py, then run \`npx diamond usecase test ${name}\``,
      '',
    ].join('\n'));
  },
};

/** Runs with our terminal; `stdoutToStderr` keeps stdout for --json output only. */
function runInherit(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, stdoutToStderr = false): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: stdoutToStderr ? ['inherit', 2, 'inherit'] : 'inherit' });
    child.once('error', reject);
    child.once('exit', resolve);
  });
}

const testUsecase: CommandModule<object, { name: string; variant: string | undefined; json: boolean; root: string | undefined }> = {
  command: 'test <name>',
  describe: "run a use case's pytest suite, then a dry run over its sample.jsonl (no Kafka needed)",
  builder: (y) => y
    .positional('name', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', describe: 'only this variant (default: all)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the dry-run rows as JSON lines' })
    .option('root', rootOption),
  handler: async ({ name, variant, json, root }) => {
    const config = loadConfig(process.env);
    const folder = usecaseFolder(config, name, root);
    if (!existsSync(folder)) throw new DiamondError(`no use case ${name} in usecases/`, { code: 'DIAMOND_USECASE_UNKNOWN', hint: `create it with \`npx diamond usecase new ${name}\`` });
    await sparkService.check(config).catch((cause: unknown) => {
      throw new DiamondError('the Python environment is not installed', { code: 'DIAMOND_PYTHON_MISSING', hint: 'run `npx diamond services up spark` once', cause });
    });
    const log = (line: string): void => { (json ? process.stderr : process.stdout).write(line + '\n'); };
    // The use case's own requirements.txt, if any: the same cached environment a deploy uses.
    const own = await prepareUsecaseEnv(config, folder, (step) => log(`── ${step}`));
    const python = own?.python ?? pythonEnvironment(config).python;
    const env = { ...pythonProcessEnv(config), ...(own ? { PYSPARK_PYTHON: own.python, PYSPARK_DRIVER_PYTHON: own.python } : {}) };
    // Both runs report each record feedback() raised on to a file of their own (the SDK's
    // harness writes them), so they are printed even when pytest only says `assert [] == […]`.
    const reports = mkdtempSync(join(tmpdir(), 'diamond-usecase-test-'));
    try {
      const testsReport = join(reports, 'tests.jsonl');
      const dryRunReport = join(reports, 'dry-run.jsonl');
      let tests: 'passed' | 'failed' | 'absent' = 'absent';
      if (existsSync(join(folder, 'tests'))) {
        log(`── pytest ${relative(config.projectRoot, folder)}/tests`);
        const pytest = ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--import-mode=importlib', '--rootdir', folder, join(folder, 'tests')];
        tests = (await runInherit(python, pytest, { ...env, [RECORD_FAILURES_ENV]: testsReport }, config.projectRoot, json)) === 0 ? 'passed' : 'failed';
      } else log(`(no tests/ folder in ${name}: add pytest tests there)`);
      // The dry run runs even after failed tests: what the job would emit helps fix them.
      const args = ['-m', 'diamond_sdk.testing', folder, ...(variant ? ['--variant', variant] : []), ...(json ? ['--json'] : [])];
      const dryRunCode = await runInherit(python, args, { ...env, [RECORD_FAILURES_ENV]: dryRunReport }, config.projectRoot);
      const failures = [...readRecordFailures(testsReport, 'tests'), ...readRecordFailures(dryRunReport, 'dry run')];
      if (json) for (const reported of failures) printLine(true, { record_failure: { phase: reported.phase, ...reported.failure } }, '');
      else process.stdout.write(formatRecordFailures(failures));
      const raised = failures.filter((reported) => !reported.failure.expected).length;
      log(`── ${name}: tests ${tests}, dry run ${dryRunCode === 0 ? 'done' : 'failed'}, ${raised} unexpected record failure${raised === 1 ? '' : 's'}`);
      if (tests === 'failed') {
        process.exitCode = 1;
        throw new DiamondError(`the tests of ${name} failed`, { code: 'DIAMOND_USECASE_TESTS_FAILED', hint: 'fix them before deploying (the records feedback() raised on are listed above)' });
      }
      if (dryRunCode !== 0) process.exitCode = dryRunCode ?? 1;
    } finally {
      rmSync(reports, { recursive: true, force: true });
    }
  },
};

const runUsecase: CommandModule<object, { name: string; variant: string; 'starting-offsets': string; root: string | undefined; json: boolean }> = {
  command: 'run <name>',
  describe: 'run one variant as a streaming job in the foreground against the configured Kafka and registry (Ctrl-C stops it after its batch)',
  builder: (y) => y
    .positional('name', { type: 'string', demandOption: true })
    .option('variant', { type: 'string', default: 'A' })
    .option('starting-offsets', { type: 'string', default: 'latest', describe: 'earliest, latest or {"records.normalized":{"0":42}}' })
    .option('root', rootOption)
    .option('json', { ...jsonOption, describe: "only the job's JSON log lines on stdout (its environment steps go to stderr)" }),
  handler: async (args) => {
    const config = loadConfig(process.env);
    const folder = usecaseFolder(config, args.name, args.root);
    if (!existsSync(folder)) throw new DiamondError(`no use case ${args.name}`, { code: 'DIAMOND_USECASE_UNKNOWN', hint: `create it with \`npx diamond usecase new ${args.name}\`` });
    const own = await prepareUsecaseEnv(config, folder, (step) => (args.json ? process.stderr : process.stdout).write(`${step}\n`));
    const settings = own ? usecaseSparkSettings(own, config.spark.master) : null;
    const submit = sparkSubmit(config, join(config.projectRoot, 'usecases', 'sdk', 'launch_job.py'), [
      '--usecase-dir', folder, '--variant', args.variant, '--brokers', config.kafka.brokers.join(','),
      '--registry-url', config.registry.url, '--starting-offsets', args['starting-offsets'],
      ...writeJobConnections(config, join(mkdtempSync(join(tmpdir(), 'diamond-run-')), 'connections.json')),
    ], { ...settings?.conf }, settings ? { archives: settings.archives, env: settings.env } : {});
    // The driver handles SIGINT/SIGTERM itself (finish the batch, report, exit 0).
    process.on('SIGINT', () => undefined);
    const code = await runInherit(submit.command, submit.args, submit.env, config.projectRoot);
    process.exitCode = code ?? 1;
  },
};

export const usecaseCommand: CommandModule = {
  command: 'usecase <command>',
  describe: 'scaffold and test use cases locally',
  builder: (y: Argv) => y.command(scaffold).command(testUsecase).command(runUsecase).command(usecaseEnvCommand).demandCommand(1),
  handler: () => undefined,
};
