/**
 * The documented parameters of the example use cases, read from their manifests
 * (usecases/<name>/usecase.yaml `params:`), for the oracle. Reading them instead of copying
 * them means a changed threshold changes the expected feedback too; `checkManifestParams`
 * is the strict form the e2e suite uses: every parameter the oracle models must be there
 * and understood, or it fails before comparing against a wrong model.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiamondError } from '../../shared/errors.ts';

export interface OracleParams {
  readonly dataQuality: {
    /** Amounts whose absolute value is above it are out of range. */
    readonly maxAmount: number;
    /** Event times more than this after processing are in the future. */
    readonly futureToleranceMs: number;
  };
  readonly spending: {
    readonly windowMs: number;
    readonly slideMs: number;
    readonly watermarkMs: number;
    /** Variant A: spend above it. */
    readonly threshold: number;
    /** Variant B: spend above it over at least minPurchases purchases. */
    readonly thresholdB: number;
    readonly minPurchases: number;
  };
}

/** The flat `params:` block of a usecase.yaml (`key: value  # comment` lines). */
export function readManifestParams(folder: string): Record<string, string> {
  const text = readFileSync(join(folder, 'usecase.yaml'), 'utf8');
  const params: Record<string, string> = {};
  let inParams = false;
  for (const line of text.split('\n')) {
    if (/^params:\s*$/.test(line)) {
      inParams = true;
      continue;
    }
    if (inParams && /^\S/.test(line)) break;
    const match = inParams ? /^\s+([A-Za-z_][\w]*):\s*(.*?)\s*(?:#.*)?$/.exec(line) : null;
    if (match?.[1]) params[match[1]] = match[2]!.replace(/^["']|["']$/g, '');
  }
  return params;
}

/** "1 hour", "30 minutes", "10 seconds" → millis. */
export function parseSparkDuration(text: string): number {
  const match = /^(\d+)\s*(second|minute|hour|day)s?$/i.exec(text.trim());
  if (!match) throw new DiamondError(`"${text}" is not a duration the oracle understands`, { code: 'DIAMOND_DATASET_PARAMS', hint: 'write durations like "1 hour" or "30 minutes" in usecase.yaml' });
  const unit = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 }[match[2]!.toLowerCase() as 'second'];
  return Number(match[1]) * unit;
}

/** The params the oracle models, with the defaults the jobs themselves apply when a manifest omits one. */
const MODELLED = {
  data_quality: { max_amount: '1000000', future_tolerance_minutes: '5' },
  spending_spike: { window: '1 hour', slide: '30 minutes', watermark: '10 minutes', threshold: '1000', threshold_b: '600', min_purchases: '3' },
} as const;

function build(get: (usecase: keyof typeof MODELLED, name: string) => string): OracleParams {
  const number = (usecase: keyof typeof MODELLED, name: string): number => {
    const value = Number(get(usecase, name));
    if (!Number.isFinite(value)) throw new DiamondError(`usecases/${usecase}/usecase.yaml: params.${name} is not a number`, { code: 'DIAMOND_DATASET_PARAMS', hint: 'the oracle (infra/dataset/oracle.ts) models it as a number' });
    return value;
  };
  return {
    dataQuality: { maxAmount: number('data_quality', 'max_amount'), futureToleranceMs: number('data_quality', 'future_tolerance_minutes') * 60_000 },
    spending: {
      windowMs: parseSparkDuration(get('spending_spike', 'window')),
      slideMs: parseSparkDuration(get('spending_spike', 'slide')),
      watermarkMs: parseSparkDuration(get('spending_spike', 'watermark')),
      threshold: number('spending_spike', 'threshold'),
      thresholdB: number('spending_spike', 'threshold_b'),
      minPurchases: number('spending_spike', 'min_purchases'),
    },
  };
}

function manifests(projectRoot: string): Record<keyof typeof MODELLED, Record<string, string>> {
  return {
    data_quality: readManifestParams(join(projectRoot, 'usecases', 'data_quality')),
    spending_spike: readManifestParams(join(projectRoot, 'usecases', 'spending_spike')),
  };
}

/** The parameters of usecases/data_quality and usecases/spending_spike, with the jobs' own defaults. */
export function readOracleParams(projectRoot: string): OracleParams {
  const read = manifests(projectRoot);
  return build((usecase, name) => read[usecase][name] ?? MODELLED[usecase][name as keyof (typeof MODELLED)[typeof usecase]]);
}

/**
 * Strict: every parameter the oracle models is written in its manifest and understood
 * (a param renamed or dropped would otherwise fall back to a default the job may no longer
 * use). Returns the parameters; throws DIAMOND_DATASET_PARAMS naming the file and param.
 */
export function checkManifestParams(projectRoot: string): OracleParams {
  const read = manifests(projectRoot);
  return build((usecase, name) => {
    const value = read[usecase][name];
    if (value === undefined || value === '') {
      throw new DiamondError(`usecases/${usecase}/usecase.yaml has no params.${name}, which the oracle models`, { code: 'DIAMOND_DATASET_PARAMS', hint: 'restore the param, or update infra/dataset/oracle.ts to the use case\'s new rules' });
    }
    return value;
  });
}
