/**
 * `diamond sql "<query>" [--limit N] [--json]`: a read-only SQL query over the history on a
 * warm function session (POST /v1/sql, docs/RUNS.md "Interactive SQL"), printed as a table.
 * Views: records and feedback (the recent days, cached), records_all and feedback_all.
 */
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import type { SqlAnswer } from '../orchestrator/sql-queries.ts';
import { ControlClient } from './control-client.ts';
import { formatTable, jsonOption, printResult } from './output.ts';

export function formatSqlAnswer(query: SqlAnswer): string {
  const table = formatTable(query.columns.map((c) => c.name), query.rows);
  const cache = query.cache.refreshedAt ? `cache of ${query.cache.days} days from ${query.cache.refreshedAt}` : `cache of ${query.cache.days} days being built`;
  return [...table, `(${query.rows.length} rows${query.truncated ? ', truncated at the limit' : ''}; ${query.timings.totalMs} ms; ${cache})`].join('\n');
}

export const sqlCommand: CommandModule<object, { query: string; limit?: number; json: boolean }> = {
  command: 'sql <query>',
  describe: 'a read-only SQL query over the history (views records, feedback: the recent days, cached; records_all, feedback_all). Needs a runner token',
  builder: (y) => y
    .positional('query', { type: 'string', demandOption: true, describe: 'one SELECT (or WITH … SELECT); quote it for the shell' })
    .option('limit', { type: 'number', describe: 'rows to print at most (capped by DIAMOND_SQL_MAX_ROWS)' })
    .option('json', { ...jsonOption, describe: 'the answer as JSON: { id, columns, rows, truncated, timings, cache }' })
    .example('$0 sql "SELECT customer_id, count(*) AS n FROM records GROUP BY customer_id ORDER BY n DESC"', 'records per customer over the cached days')
    .example('$0 sql "SELECT day, count(*) FROM feedback_all GROUP BY day ORDER BY day" --json', 'feedback per day over the whole history'),
  handler: async ({ query, limit, json }) => {
    const config = loadConfig(process.env);
    const body = limit === undefined ? { sql: query } : { sql: query, limit };
    const answer = await ControlClient.fromConfig(config).json<{ query: SqlAnswer }>('POST', '/v1/sql', body);
    printResult(json, answer.query, formatSqlAnswer(answer.query));
  },
};
