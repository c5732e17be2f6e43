/**
 * `diamond run <usecase.function> --param name=value … [--async] [--wait 30s] [--json]`: runs a
 * use case's function on the orchestrator (POST /v1/runs, docs/RUNS.md) and prints its result:
 * a value as JSON, rows as a table. A run that has not ended within the wait goes on; its id is
 * printed, and `diamond run <run id>` shows it later (`--cancel` cancels it).
 */
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import type { RunRecord } from '../orchestrator/run-store.ts';
import { ControlClient } from './control-client.ts';
import { formatTable, jsonOption, printResult } from './output.ts';

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The control client's request timeout is 120 s: a longer wait would be cut by it. */
const MAX_CLI_WAIT_S = 110;

/** `name=value` pairs → params (values stay strings: the orchestrator types them from the declaration). */
export function parseParamPairs(pairs: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new DiamondError(`--param ${pair} is not name=value`, { code: 'DIAMOND_BAD_ARGUMENT', hint: 'e.g. --param customer_id=acme --param since=7d' });
    params[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return params;
}

/** '30s' | '2m' | '500ms' | '45' (seconds) → whole seconds for ?wait=, capped for the HTTP client. */
export function parseWaitSeconds(text: string): number {
  const match = /^(\d+)\s*(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new DiamondError(`--wait ${text} is not a duration`, { code: 'DIAMOND_BAD_ARGUMENT', hint: 'e.g. --wait 30s or --wait 2m; --async does not wait' });
  const seconds = Math.ceil((Number(match[1]) * ({ ms: 0.001, s: 1, m: 60 }[match[2] ?? 's'] ?? 1)));
  return Math.min(seconds, MAX_CLI_WAIT_S);
}

/** The run for people: its result (value as JSON, rows as a table) or where it is. */
export function formatRun(run: RunRecord): string {
  const took = run.startedAt && run.endedAt ? ` in ${Date.parse(run.endedAt) - Date.parse(run.startedAt)} ms` : '';
  if (run.state === 'finished' && run.result) {
    if (run.result.kind === 'value') return `${JSON.stringify(run.result.value, null, 2)}\n(run ${run.id} finished${took})`;
    const table = formatTable(run.result.columns.map((c) => c.name), run.result.rows);
    return [...table, `(${run.result.rows.length} rows${run.result.truncated ? ', truncated at max_rows' : ''}; run ${run.id} finished${took})`].join('\n');
  }
  return `run ${run.id} of ${run.function} is ${run.state} (queued ${run.queuedAt})\n  → see it with \`npx diamond run ${run.id}\`, cancel it with \`npx diamond run ${run.id} --cancel\``;
}

/** A failed, cancelled or timed-out run as the error the CLI exits 1 with. */
export function runFailure(run: RunRecord): DiamondError | null {
  if (run.state === 'failed' || run.state === 'timed-out') {
    const error = run.error;
    const where = error?.file ? ` at ${error.file}:${error.line ?? '?'}${error.function ? ` in ${error.function}` : ''}` : '';
    const hint = error?.code === 'user_code' ? 'fix the function and run it again (`diamond usecase test` runs its tests)'
      : run.state === 'timed-out' ? "make the function faster, or raise its limits (run_timeout, start_timeout) in usecase.yaml"
        : 'run it again; if it keeps failing, see the orchestrator log';
    return new DiamondError(`run ${run.id} of ${run.function} ${run.state}: ${error?.code ?? 'error'}${where}: ${error?.message ?? ''}`, { code: 'DIAMOND_RUN_FAILED', hint });
  }
  if (run.state === 'cancelled') return new DiamondError(`run ${run.id} of ${run.function} was cancelled`, { code: 'DIAMOND_RUN_FAILED', hint: 'run it again' });
  return null;
}

export const runCommand: CommandModule<object, { target: string; param: string[]; async: boolean; wait?: string; cancel: boolean; json: boolean }> = {
  command: 'run <target>',
  describe: 'run a use case function (usecase.function) and print its result; or show (or --cancel) a run by its id. Needs a runner token',
  builder: (y) => y
    .positional('target', { type: 'string', demandOption: true, describe: 'usecase.function, e.g. customer_insights.customer_summary; or a run id' })
    .option('param', { alias: 'p', type: 'string', array: true, default: [], describe: 'name=value, once per parameter (timestamps: ISO-8601 or 7d; durations: 30s, 5m)' })
    .option('async', { type: 'boolean', default: false, describe: 'do not wait: print the run id at once' })
    .option('wait', { type: 'string', describe: `how long to wait for the result (default DIAMOND_RUNS_DEFAULT_WAIT, at most ${MAX_CLI_WAIT_S}s)` })
    .option('cancel', { type: 'boolean', default: false, describe: 'with a run id: cancel it' })
    .option('json', { ...jsonOption, describe: 'the run record as JSON' })
    .example('$0 run customer_insights.customer_summary --param customer_id=acme --param since=7d', 'a customer summary over the last week')
    .example('$0 run customer_insights.customer_summary -p customer_id=acme --async', 'queue it and print the run id'),
  handler: async ({ target, param, async, wait, cancel, json }) => {
    const config = loadConfig(process.env);
    const client = ControlClient.fromConfig(config);
    const waitS = async ? 0 : parseWaitSeconds(wait ?? `${Math.ceil(config.runs.defaultWaitMs / 1000)}s`);
    let run: RunRecord;
    if (RUN_ID.test(target)) {
      if (param.length > 0) throw new DiamondError('--param is for running a function, not for a run id', { code: 'DIAMOND_BAD_ARGUMENT', hint: `show the run with \`npx diamond run ${target}\`` });
      run = (await client.json<{ run: RunRecord }>(cancel ? 'DELETE' : 'GET', `/v1/runs/${target}`)).run;
    } else {
      if (cancel) throw new DiamondError('--cancel needs a run id', { code: 'DIAMOND_BAD_ARGUMENT', hint: 'the id `diamond run … --async` printed' });
      const query = waitS > 0 ? `?wait=${waitS}s` : '';
      run = (await client.json<{ run: RunRecord }>('POST', `/v1/runs${query}`, { function: target, params: parseParamPairs(param) })).run;
    }
    const failure = runFailure(run);
    if (failure && !json) throw failure;
    if (failure) process.exitCode = 1;
    printResult(json, run, formatRun(run));
  },
};
