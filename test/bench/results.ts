/**
 * What every benchmark returns, and the one table `npm run bench` prints at the end (and
 * writes as JSON to bench-results.json at the repo root, git-ignored).
 *
 * A row is one measurement of Diamond's path beside its baseline from the same run. When a
 * baseline is measured by another benchmark of the same run (e.g. the end-to-end throughput
 * is compared with the slowest bare hop, measured by the upstream, use case and downstream
 * benches), the row names it in `baselineRefs` and main.ts fills it in once all have run.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

export type Unit = 'records/s' | 'rows/s' | 'ms' | 's' | 'MiB';

export interface BenchRow {
  /** upstream, use case job, downstream, orchestrator, end to end. */
  readonly component: string;
  readonly metric: string;
  readonly unit: Unit;
  /** Diamond's figure; null when it could not be measured (the note says why). */
  readonly value: number | null;
  readonly baseline: number | null;
  /** What the baseline is, in a few words. */
  readonly baselineIs: string;
  /** Which direction is good for value/baseline. */
  readonly better: 'higher' | 'lower';
  readonly target?: string;
  readonly note?: string;
  /** Named figures of other benches of this run; the smallest one available becomes the baseline. */
  readonly baselineRefs?: readonly string[];
}

export interface BenchResult {
  readonly bench: string;
  readonly seconds: number;
  readonly rows: BenchRow[];
  /** Named figures other benches may use as their baseline (see baselineRefs). */
  readonly refs?: Record<string, number>;
  /** Anything else worth keeping in the JSON (breakdowns, settings). */
  readonly details?: Record<string, unknown>;
}

export interface BenchContext {
  /** Results of the benches that already ran in this process. */
  readonly earlier: readonly BenchResult[];
}

export interface BenchModule {
  run(context: BenchContext): Promise<BenchResult>;
}

export const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const toMiB = (bytes: number): number => bytes / 2 ** 20;

/** Peak resident memory (VmHWM, tracked by the kernel) of a live process, in MiB. */
export function peakRssMiB(pid: number): number {
  try {
    const kib = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
    return kib / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Current resident memory of a process in MiB (0 when it is gone). */
export function rssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * The memory floor of a Node service: an idle `node --import tsx` process with the same
 * client libraries connected (test/bench/bare-node.ts). Its peak RSS after `settleMs`.
 */
export async function bareNodeFloorMiB(projectRoot: string, clients: readonly ('kafka' | 'redis' | 'cassandra')[], settleMs = 3000): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'test', 'bench', 'bare-node.ts'), clients.join(',')], {
    cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DIAMOND_LOG_LEVEL: 'warn' },
  });
  try {
    await once(createInterface({ input: child.stdout }), 'line');
    await sleep(settleMs);
    return peakRssMiB(child.pid!);
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
}

export function ratioOf(row: Pick<BenchRow, 'value' | 'baseline'>): number | null {
  if (row.value === null || row.baseline === null || !Number.isFinite(row.value) || !Number.isFinite(row.baseline) || row.baseline === 0) return null;
  return row.value / row.baseline;
}

/** Fills baselines named by `baselineRefs` from the refs of all results (smallest available). */
export function resolveRefs(results: readonly BenchResult[]): BenchResult[] {
  const refs = new Map<string, number>();
  for (const result of results) for (const [name, value] of Object.entries(result.refs ?? {})) if (Number.isFinite(value)) refs.set(name, value);
  return results.map((result) => ({
    ...result,
    rows: result.rows.map((row) => {
      if (row.baseline !== null || !row.baselineRefs) return row;
      const found = row.baselineRefs.filter((name) => refs.has(name)).map((name) => ({ name, value: refs.get(name)! }));
      if (found.length === 0) return { ...row, note: [row.note, `baseline needs ${row.baselineRefs.join(', ')} (run every bench)`].filter(Boolean).join('; ') };
      const smallest = found.reduce((a, b) => (b.value < a.value ? b : a));
      return { ...row, baseline: smallest.value, baselineIs: row.baselineRefs.length > 1 ? `${row.baselineIs}: ${smallest.name}` : row.baselineIs };
    }),
  }));
}

function format(value: number | null, unit: Unit): string {
  if (value === null || !Number.isFinite(value)) return '—';
  if (unit === 's') return `${value.toFixed(1)} s`;
  if (unit === 'MiB') return `${Math.round(value).toLocaleString('en')} MiB`;
  if (unit === 'ms') return `${Math.round(value).toLocaleString('en')} ms`;
  return `${Math.round(value).toLocaleString('en')} ${unit === 'records/s' ? 'rec/s' : 'rows/s'}`;
}

/** The one table: component, metric, Diamond, baseline, ratio (Diamond/baseline), what the baseline is, target/notes. */
export function renderTable(results: readonly BenchResult[]): string {
  const header = ['component', 'metric', 'Diamond', 'baseline', 'ratio', 'baseline is', 'target / note'];
  const lines: string[][] = [];
  for (const result of results) {
    for (const row of result.rows) {
      const ratio = ratioOf(row);
      lines.push([
        row.component, row.metric, format(row.value, row.unit), format(row.baseline, row.unit),
        ratio === null ? '—' : `${ratio.toFixed(2)} ${row.better === 'higher' ? '↑' : '↓'}`,
        row.baselineIs, [row.target, row.note].filter(Boolean).join('; '),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.min(i >= 5 ? 60 : 40, Math.max(h.length, ...lines.map((l) => l[i]!.length))));
  const render = (cells: string[]): string => cells.map((cell, i) => (i === 2 || i === 3 || i === 4 ? cell.padStart(widths[i]!) : cell.padEnd(i === cells.length - 1 ? 0 : widths[i]!))).join('  ').trimEnd();
  return [render(header), widths.map((w) => '─'.repeat(w)).join('  '), ...lines.map(render)].join('\n')
    + '\nratio = Diamond / baseline; ↑ higher is better, ↓ lower is better.';
}

/** What else runs on the machine: load average and Spark applications / platform processes not started by this run. */
export function machineContext(): { loadavg: number[]; sparkApps: number; platformProcesses: string[] } {
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  let sparkApps = 0;
  const platformProcesses: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes('org.apache.spark.deploy.SparkSubmit')) sparkApps++;
    const platform = /^(diamond-\w+@\S+)/.exec(cmdline);
    if (platform) platformProcesses.push(platform[1]!);
  }
  return { loadavg, sparkApps, platformProcesses };
}

export function describeMachine(context: ReturnType<typeof machineContext>): string {
  const busy = context.sparkApps > 0 || context.platformProcesses.length > 0;
  return `load average ${context.loadavg.join(' ')}; other Spark applications running: ${context.sparkApps}; platform processes: ${context.platformProcesses.join(', ') || 'none'}`
    + (busy ? '  ← figures are disturbed by them' : '');
}

/** CPU seconds (user + system) used so far by these processes (0 for gone ones). */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / 100; // USER_HZ
}

/** Pids of the local services by the marker their command line carries (-Ddiamond.service=<name>@…). */
export function servicePids(names: readonly string[]): Record<string, number[]> {
  const found: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    for (const name of names) if (cmdline.includes(`-Ddiamond.service=${name}@`)) found[name]!.push(Number(entry));
  }
  return found;
}

/**
 * A process and all its descendants, by parent pid from /proc/<pid>/stat. (Reading
 * /proc/<pid>/task/<pid>/children misses what a JVM starts from other threads, such as
 * PySpark's Python driver and workers.)
 */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const all = [root];
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]!) ?? []));
  return all;
}

export interface TreeMemory {
  /** Peak RSS of the root process and of the whole tree (sum at one sample), MiB. */
  stop(): { rootMiB: number; treeMiB: number };
}

/**
 * Samples the RSS of a process tree every `everyMs`. The tree's figure is the sum of its
 * processes' RSS, so pages they share (forked Python workers) count once per process: an
 * upper bound, measured the same way for Diamond's job and the bare Spark baseline.
 */
export function sampleTree(root: number, everyMs = 250): TreeMemory {
  let rootMiB = 0;
  let treeMiB = 0;
  const sample = (): void => {
    const pids = descendantsOf(root);
    rootMiB = Math.max(rootMiB, rssMiB(root));
    treeMiB = Math.max(treeMiB, pids.reduce((sum, pid) => sum + rssMiB(pid), 0));
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return { rootMiB, treeMiB };
    },
  };
}
