/**
 * What a use case's functions are: the Python SDK's own parser answers
 * (`python3 -m diamond_sdk._runtime.functions describe <folder>`, docs/RUNS.md), once per code
 * version of the folder (version.ts), and the answer is cached. A use case is found under
 * DIAMOND_USECASE_ROOTS by name; `usecase.function` that names nothing is a 404 whose hint
 * lists what exists.
 */
import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { DiamondConfig } from '../../shared/config.ts';
import { ApiError, DiamondError } from '../../shared/errors.ts';
import { pythonEnvironment, pythonProcessEnv } from '../../shared/runtime-paths.ts';
import { checkUsecaseName } from './control-routes.ts';
import type { ParamSpec } from './run-params.ts';
import { codeVersion } from './version.ts';

export interface FunctionLimits {
  readonly start_timeout_ms: number;
  readonly run_timeout_ms: number;
  readonly max_rows: number;
}

/** One function as `describe` prints it. */
export interface FunctionSpec {
  readonly file: string;
  readonly description: string | null;
  readonly params: Readonly<Record<string, ParamSpec>>;
  readonly limits: FunctionLimits;
  readonly exclusive: boolean;
  readonly concurrency: number;
}

export interface UsecaseFunctions {
  readonly usecase: string;
  /** The folder (symlinks resolved) and its code version when it was described. */
  readonly folder: string;
  readonly version: string;
  readonly functions: Readonly<Record<string, FunctionSpec>>;
}

/** A function resolved for a run. */
export interface ResolvedFunction {
  /** `usecase.function` */
  readonly name: string;
  readonly usecase: string;
  readonly function: string;
  readonly folder: string;
  readonly version: string;
  readonly spec: FunctionSpec;
}

const DESCRIBE_TIMEOUT_MS = 30_000;
const FUNCTION_NAME = /^[a-z][a-z0-9_]{0,62}\.[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Runs the Python describe; exposed for tests. */
export function describeFunctions(config: DiamondConfig, folder: string): Promise<{ usecase: string; functions: Record<string, FunctionSpec> }> {
  return new Promise((resolve, reject) => {
    execFile(pythonEnvironment(config).python, ['-m', 'diamond_sdk._runtime.functions', 'describe', folder], { env: pythonProcessEnv(config), timeout: DESCRIBE_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      let body: unknown = null;
      try {
        body = JSON.parse(stdout);
      } catch {
        // not JSON: the interpreter failed before describe ran
      }
      const code = error && typeof error.code === 'number' ? error.code : error ? -1 : 0;
      if (code === 0 && body && typeof body === 'object') return resolve(body as { usecase: string; functions: Record<string, FunctionSpec> });
      if (code === 2 && body && typeof body === 'object') {
        const refused = body as { error?: string; problems?: [string, string, string][] };
        const first = refused.problems?.[0];
        return reject(new DiamondError(`${folder}/usecase.yaml: ${refused.error ?? 'functions are malformed'}`, { code: 'DIAMOND_FUNCTIONS_INVALID', hint: first ? `${first[0]}: ${first[1]}; ${first[2]}` : 'see docs/RUNS.md for the functions: section' }));
      }
      reject(new DiamondError(`describing the functions of ${folder} failed: ${(stderr || error?.message || 'no output').trim().split('\n').slice(-3).join(' ')}`, { code: 'DIAMOND_INTERNAL', hint: 'check the platform Python environment (`npx diamond services up` installs it)' }));
    });
  });
}

export class FunctionCatalog {
  /** folder → what describe said of one code version. */
  readonly #cache = new Map<string, UsecaseFunctions>();
  /** Describes in flight, so concurrent POSTs run one. */
  readonly #pending = new Map<string, Promise<UsecaseFunctions>>();

  constructor(private readonly config: DiamondConfig) {}

  /** The folder of a use case by name, under the first root that has it. */
  folderOf(usecase: string): string {
    for (const root of this.config.usecases.roots) {
      const folder = join(root, usecase);
      if (existsSync(join(folder, 'usecase.yaml'))) return realpathSync(folder);
    }
    throw new ApiError('DIAMOND_FUNCTION_UNKNOWN', `no use case ${usecase} under ${this.config.usecases.roots.join(', ')}`, 'name a use case folder with a usecase.yaml under DIAMOND_USECASE_ROOTS, e.g. customer_insights.customer_summary');
  }

  /** The use case's functions at its current code version (described again when the code changed). */
  async usecase(usecase: string): Promise<UsecaseFunctions> {
    const folder = this.folderOf(usecase);
    const version = codeVersion(folder);
    const cached = this.#cache.get(folder);
    if (cached && cached.version === version) return cached;
    const key = `${folder}@${version}`;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = describeFunctions(this.config, folder).then((described) => {
        const entry: UsecaseFunctions = { usecase: described.usecase, folder, version, functions: described.functions };
        this.#cache.set(folder, entry);
        return entry;
      }).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  /** `usecase.function` → its declaration; 404 DIAMOND_FUNCTION_UNKNOWN with what exists. */
  async resolve(name: unknown): Promise<ResolvedFunction> {
    if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
      throw new ApiError('DIAMOND_BAD_REQUEST', `function must be "usecase.function", not ${JSON.stringify(name)}`, 'e.g. {"function": "customer_insights.customer_summary", "params": {"customer_id": "acme"}}');
    }
    const [usecase, fn] = name.split('.') as [string, string];
    checkUsecaseName(usecase, 'function');
    const described = await this.usecase(usecase);
    const spec = described.functions[fn];
    if (!spec) {
      const names = Object.keys(described.functions);
      throw new ApiError('DIAMOND_FUNCTION_UNKNOWN', `${usecase} has no function ${fn}`, names.length > 0 ? `its functions: ${names.map((n) => `${usecase}.${n}`).join(', ')}` : `${usecase}/usecase.yaml declares no functions: (docs/RUNS.md)`);
    }
    return { name, usecase, function: fn, folder: described.folder, version: described.version, spec };
  }
}
