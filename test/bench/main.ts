/**
 * `npm run bench [-- <name> …]`: runs the benchmarks in test/bench/<name>.bench.ts (all of
 * them when none is named). Each compares Diamond's path with the bare client library in
 * the same run and prints the ratio. Never part of `npm test`.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchModule {
  run(): Promise<void>;
}

const dir = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(dir).filter((file) => file.endsWith('.bench.ts')).map((file) => file.replace('.bench.ts', ''));
const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const names = requested.length > 0 ? requested : available;
for (const name of names) {
  if (!available.includes(name)) {
    process.stderr.write(`no benchmark "${name}"; available: ${available.join(', ') || '(none yet)'}\n`);
    process.exit(2);
  }
  const module = (await import(join(dir, `${name}.bench.ts`))) as BenchModule;
  await module.run();
}
