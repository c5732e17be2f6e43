/**
 * `npm run bench [-- <name> …]`: runs the benchmarks in test/bench/<name>.bench.ts (all of
 * them when none is named: upstream, usecase, downstream, orchestrator, e2e, in that order),
 * each comparing Diamond's path with the bare client library or bare Spark in the same run.
 * Each prints its own lines as it goes; at the end one table of every figure beside its
 * baseline and the ratio, also written as JSON to bench-results.json at the repo root
 * (git-ignored; the last run wins) and kept as $DIAMOND_HOME/bench/<time>.json.
 *
 * Runs Spark: hold the shared lock, `flock /tmp/diamond-spark.lock npm run bench`.
 * Never part of `npm test`. A bench that fails is reported and the others still run
 * (exit code 1 at the end).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import { describeMachine, machineContext, out, ratioOf, renderTable, resolveRefs, type BenchModule, type BenchResult } from './results.ts';

const ORDER = ['upstream', 'usecase', 'downstream', 'orchestrator', 'runs', 'e2e'];

const dir = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(dir).filter((file) => file.endsWith('.bench.ts')).map((file) => file.replace('.bench.ts', ''))
  .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const names = requested.length > 0 ? requested : available;
for (const name of names) {
  if (!available.includes(name)) {
    process.stderr.write(`no benchmark "${name}"; available: ${available.join(', ') || '(none yet)'}\n`);
    process.exit(2);
  }
}

const config = loadConfig(process.env);
const startedAt = new Date();
const results: BenchResult[] = [];
const failures: { bench: string; error: string }[] = [];
const contexts: Record<string, ReturnType<typeof machineContext>> = {};
for (const name of names) {
  out(`\n=== ${name} ===`);
  contexts[name] = machineContext();
  out(`machine before ${name}: ${describeMachine(contexts[name])}`);
  const began = performance.now();
  try {
    const module = (await import(join(dir, `${name}.bench.ts`))) as BenchModule;
    results.push(await module.run({ earlier: results }));
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : errorMessage(error);
    process.stderr.write(`bench ${name} failed after ${((performance.now() - began) / 1000).toFixed(0)} s: ${message}\n`);
    failures.push({ bench: name, error: errorMessage(error) });
  }
  out(`(${name}: ${((performance.now() - began) / 1000).toFixed(0)} s)`);
}

const resolved = resolveRefs(results);
const totalSeconds = (Date.now() - startedAt.getTime()) / 1000;
out(`\n=== results (${names.join(', ')}; ${Math.round(totalSeconds)} s; ${config.spark.master}) ===`);
out(renderTable(resolved));
for (const failure of failures) out(`FAILED: ${failure.bench}: ${failure.error.split('\n')[0]}`);
const disturbed = Object.entries(contexts).filter(([, c]) => c.sparkApps > 0 || c.platformProcesses.length > 0).map(([name]) => name);
if (disturbed.length > 0) out(`note: other Spark applications or platform processes were running before ${disturbed.join(', ')} (see machine in the JSON)`);

const json = {
  startedAt: startedAt.toISOString(),
  seconds: totalSeconds,
  complete: failures.length === 0 && names.length === available.length,
  benches: names,
  machine: { cores: (await import('node:os')).cpus().length, sparkMaster: config.spark.master, node: process.version, beforeEachBench: contexts, atEnd: machineContext() },
  failures,
  rows: resolved.flatMap((result) => result.rows.map((row) => ({ bench: result.bench, ...row, ratio: ratioOf(row) }))),
  results: resolved,
};
const text = `${JSON.stringify(json, null, 2)}\n`;
writeFileSync(join(config.projectRoot, 'bench-results.json'), text);
const history = join(config.home, 'bench');
mkdirSync(history, { recursive: true });
writeFileSync(join(history, `${startedAt.toISOString().replaceAll(':', '')}.json`), text);
out(`written: bench-results.json (and ${join(history, '…')})`);
process.exit(failures.length > 0 ? 1 : 0);
