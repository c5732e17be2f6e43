/**
 * What the demo remembers between runs, in `<home>/demo/state.json` (mode 0600: it holds API
 * keys): the demo source's and customers' API keys (Redis keeps only their hashes, so a
 * rerun could not show them otherwise) and its recent runs (seed and anchor regenerate a run's
 * dataset exactly, which tells where it left spending_spike's watermark).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';

export interface DemoRun {
  readonly tag: string;
  readonly seed: number;
  readonly anchor: number;
}

export interface DemoState {
  readonly sourceKey: string | null;
  readonly customerKeys: Readonly<Record<string, string>>;
  readonly runs: readonly DemoRun[];
}

/** Runs older than this cannot hold an open spending window any more (window 1 h + watermark). */
const RUN_MEMORY_MS = 6 * 3_600_000;

export function demoStatePath(config: Pick<DiamondConfig, 'home'>): string {
  return join(config.home, 'demo', 'state.json');
}

export function readDemoState(config: Pick<DiamondConfig, 'home'>): DemoState {
  const empty: DemoState = { sourceKey: null, customerKeys: {}, runs: [] };
  const path = demoStatePath(config);
  if (!existsSync(path)) return empty;
  try {
    const state = JSON.parse(readFileSync(path, 'utf8')) as Partial<DemoState>;
    return { sourceKey: state.sourceKey ?? null, customerKeys: state.customerKeys ?? {}, runs: state.runs ?? [] };
  } catch {
    return empty; // a damaged file only costs new keys
  }
}

export function writeDemoState(config: Pick<DiamondConfig, 'home'>, state: DemoState): void {
  const path = demoStatePath(config);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
}

/** The runs still worth replaying in the model, plus this one. */
export function withRun(state: DemoState, run: DemoRun): DemoState {
  const recent = state.runs.filter((r) => r.anchor > run.anchor - RUN_MEMORY_MS && r.tag !== run.tag);
  return { ...state, runs: [...recent, run] };
}
