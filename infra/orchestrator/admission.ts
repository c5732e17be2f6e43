/**
 * Admission control: the resources the deployed jobs declare (usecase.yaml `resources`)
 * must fit the configured budget times the over-commit ratio. Declared, not sampled: a job
 * idle now may be busy later, and the refusal must not depend on the moment.
 */
import type { DeclaredResources, Deployment } from './state.ts';

export interface ResourceBudget {
  readonly cores: number;
  readonly memoryMb: number;
  readonly overcommit: number;
}

export type AdmissionDecision =
  | { readonly admitted: true }
  | { readonly admitted: false; readonly reason: string };

const DEFAULT_RESOURCES: DeclaredResources = { cores: 1, memoryMb: 1024 };

/**
 * `others` are the deployments that stay (the one being redeployed excluded); `reserved` is
 * what the platform holds besides them (the driver pool's idle spares: see spareReservation).
 */
export function admit(request: { usecase: string; variant: string; resources: DeclaredResources }, others: readonly Deployment[], budget: ResourceBudget, reserved: DeclaredResources = { cores: 0, memoryMb: 0 }): AdmissionDecision {
  const used = others.reduce((sum, d) => {
    const r = d.resources ?? DEFAULT_RESOURCES;
    return { cores: sum.cores + r.cores, memoryMb: sum.memoryMb + r.memoryMb };
  }, reserved);
  const limit = { cores: budget.cores * budget.overcommit, memoryMb: budget.memoryMb * budget.overcommit };
  const missing: string[] = [];
  const coresShort = used.cores + request.resources.cores - limit.cores;
  const memoryShort = used.memoryMb + request.resources.memoryMb - limit.memoryMb;
  if (coresShort > 1e-9) missing.push(`${round(coresShort)} core(s) (needs ${round(request.resources.cores)}, ${round(used.cores)} of ${round(limit.cores)} already declared)`);
  if (memoryShort > 1e-9) missing.push(`${Math.ceil(memoryShort)} MiB of memory (needs ${Math.ceil(request.resources.memoryMb)} MiB, ${Math.ceil(used.memoryMb)} of ${Math.floor(limit.memoryMb)} MiB already declared)`);
  if (missing.length === 0) return { admitted: true };
  const holders = [...others.map((d) => `${d.usecase}/${d.variant}`), ...(reserved.memoryMb > 0 ? [`the driver pool (${Math.ceil(reserved.memoryMb)} MiB)`] : [])].join(', ') || 'nothing';
  return {
    admitted: false,
    reason: `${request.usecase}/${request.variant} does not fit the resource budget: missing ${missing.join(' and ')}; deployed: ${holders}; budget ${round(budget.cores)} cores and ${Math.floor(budget.memoryMb)} MiB × over-commit ${budget.overcommit}`,
  };
}

/**
 * What the pool's idle spares hold: one driver's memory each. No cores: an idle spare only
 * polls for its assignment, and a job that takes one brings its own declared cores.
 */
export function spareReservation(poolSize: number, driverMemoryMb: number): DeclaredResources {
  return { cores: 0, memoryMb: poolSize * driverMemoryMb };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
