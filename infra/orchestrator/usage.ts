/**
 * CPU and memory of a job's process tree, sampled from /proc. Every process of a job runs
 * in the process group its launcher created (spark-submit's JVM and the Python workers it
 * forks), so the tree is "every pid whose process group is the job's". CPU is the share of
 * one core used between two samples (1.0 = one core busy).
 */
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ; 100 on every Linux we run on
const PAGE_SIZE = 4096;

export interface GroupSample {
  /** Total user + system CPU time, in seconds, of the group's live processes. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly processes: number;
  readonly at: number;
}

export interface JobUsage {
  /** Cores in use on average since the previous sample (null on the first). */
  readonly cpu: number | null;
  readonly memoryMb: number;
  readonly processes: number;
  readonly at: number;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces). */
function statFields(pid: string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // exited meanwhile
  }
}

/** One pass over /proc: every process group's CPU time and resident memory. */
export function sampleProcessGroups(groups: ReadonlySet<number>, now = Date.now()): Map<number, GroupSample> {
  const totals = new Map<number, { cpu: number; rss: number; processes: number }>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return new Map();
  }
  for (const pid of pids) {
    const fields = statFields(pid);
    if (!fields) continue;
    // After the name: [0]=state [2]=pgrp [11]=utime [12]=stime [21]=rss (pages)
    const group = Number(fields[2]);
    if (!groups.has(group) || fields[0] === 'Z') continue;
    const total = totals.get(group) ?? { cpu: 0, rss: 0, processes: 0 };
    total.cpu += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    total.rss += Number(fields[21]) * PAGE_SIZE;
    total.processes += 1;
    totals.set(group, total);
  }
  return new Map([...totals].map(([group, t]) => [group, { cpuSeconds: t.cpu, rssBytes: t.rss, processes: t.processes, at: now }]));
}

/** Usage from two samples of the same group. */
export function usageBetween(previous: GroupSample | undefined, current: GroupSample): JobUsage {
  const elapsed = previous ? (current.at - previous.at) / 1000 : 0;
  const cpu = previous && elapsed > 0 ? Math.max(0, (current.cpuSeconds - previous.cpuSeconds) / elapsed) : null;
  return { cpu: cpu === null ? null : Math.round(cpu * 100) / 100, memoryMb: Math.round(current.rssBytes / 2 ** 20), processes: current.processes, at: current.at };
}
