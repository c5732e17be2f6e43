/**
 * The dashboard's three files (infra/orchestrator/ui/: index.html, app.js, app.css), served by
 * the control API at /ui without a token: they hold no data. The page reads an operator token
 * from the URL fragment (`#token=…`, which browsers never send to a server, so it reaches no
 * log) and sends it as `Authorization: Bearer` to the /v1 routes for everything it shows.
 *
 * No CDN and no build step: plain ES modules, read once at start. The Content-Security-Policy
 * lets the page load only these files and talk only to this origin, so it works offline and a
 * compromised third party cannot read the token.
 */
import { readFileSync } from 'node:fs';
import { ApiError } from '../../shared/errors.ts';

export interface DashboardAsset {
  readonly contentType: string;
  readonly body: string;
}

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
} as const;

export type DashboardFile = keyof typeof FILES;

export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

/** Reads the files once; a missing one fails the start, not a request. */
export function loadDashboardAssets(folder: URL = new URL('./ui/', import.meta.url)): (file: string) => DashboardAsset {
  const assets = new Map<string, DashboardAsset>(
    (Object.entries(FILES) as [DashboardFile, string][]).map(([file, contentType]) => [file, { contentType, body: readFileSync(new URL(file, folder), 'utf8') }]),
  );
  return (file) => {
    const asset = assets.get(file);
    if (!asset) throw new ApiError('DIAMOND_NO_ROUTE', `the dashboard has no file ${file}`, 'open /ui');
    return asset;
  };
}
