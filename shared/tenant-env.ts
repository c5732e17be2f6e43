/**
 * The environment of processes that run tenant code (validation, pip, jobs): built from an
 * allow-list, never a copy of ours, so no DIAMOND_TOKEN, Redis URL, password or cloud
 * credential of the platform's process reaches a use case. What passes is what Python, pip,
 * Java and Spark need to run (PATH, locale, time zone, CA bundles); the caller adds the
 * per-process values (JAVA_HOME, PYSPARK_PYTHON, a private HOME…).
 *
 *   spawn(python, args, { env: tenantEnv({ HOME: privateHome, JAVA_HOME: config.javaHome }) });
 */
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Passed to every tenant process when set in ours: how to run programs, nothing that authenticates. */
export const TENANT_ENV_ALLOWED: readonly string[] = ['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TERM', 'TMPDIR', 'SSL_CERT_FILE', 'SSL_CERT_DIR'];

/**
 * Passed to pip only: the operator's pip configuration (PIP_*: index, certificates, timeouts) and
 * proxies, so the deploy-time install reaches the index the platform chose. Jobs never get them.
 */
const PIP_ENV_ALLOWED = /^(PIP_[A-Z_]+|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$/;

/** Never passed, whatever the lists say: our own settings. */
const NEVER = /^DIAMOND_/;

/** The allow-listed variables of `source` plus `extra` (which wins). */
export function tenantEnv(extra: Readonly<Record<string, string>>, options: { readonly pip?: boolean } = {}, source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || NEVER.test(name)) continue;
    if (TENANT_ENV_ALLOWED.includes(name) || (options.pip === true && PIP_ENV_ALLOWED.test(name))) env[name] = value;
  }
  return { ...env, ...extra };
}

/**
 * Runs `fn` with a fresh, empty home folder (removed after): tenant processes never see ours.
 * `owner`: the unprivileged user the tenant process runs as, who gets the folder (0700).
 */
export async function withPrivateHome<T>(fn: (home: string) => Promise<T>, owner?: { readonly uid: number; readonly gid: number } | null): Promise<T> {
  const home = mkdtempSync(join(tmpdir(), 'diamond-tenant-home-'));
  try {
    if (owner) chownSync(home, owner.uid, owner.gid);
    return await fn(home);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
