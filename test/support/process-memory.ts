/** Peak resident memory of a process tree, sampled from /proc (Linux). */
import { readFileSync } from 'node:fs';

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]!));
  return all;
}

export interface MemorySampler {
  stop(): { peakTreeBytes: number; peakRootBytes: number };
}

/** Samples every `everyMs`: the root process alone and the whole tree. */
export function sampleMemory(pid: number, everyMs = 250): MemorySampler {
  let peakTreeBytes = 0;
  let peakRootBytes = 0;
  const timer = setInterval(() => {
    const tree = processTree(pid);
    peakTreeBytes = Math.max(peakTreeBytes, tree.reduce((sum, p) => sum + rssBytes(p), 0));
    peakRootBytes = Math.max(peakRootBytes, rssBytes(pid));
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return { peakTreeBytes, peakRootBytes };
    },
  };
}

export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
