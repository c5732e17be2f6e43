/**
 * The dashboard's address with a token in it: what `diamond ui` prints and the browser test
 * opens. The token rides in the fragment (`/ui#token=…`): browsers never send a fragment to
 * the server, so it reaches no access log nor proxy; the page moves it to sessionStorage and
 * clears it from the address bar.
 *
 *   const link = await dashboardLink(tokens, 'http://127.0.0.1:18070', { role: 'viewer', expiresAt });
 *   link.url; // http://127.0.0.1:18070/ui#token=dmd_…
 */
import type { Role, TokenStore } from '../../shared/operator-tokens.ts';

export interface DashboardLink {
  readonly url: string;
  readonly role: Role;
  readonly name: string;
  readonly expiresAt: string | null;
}

/** `<controlUrl>/ui#token=<token>`. */
export function dashboardUrl(controlUrl: string, token: string): string {
  return `${controlUrl.replace(/\/+$/, '')}/ui#token=${encodeURIComponent(token)}`;
}

/**
 * Mints a token of its own for the dashboard (named `dashboard-<role>`, revocable by that name
 * with `diamond token revoke`), so the admin token the CLI holds never lands in a browser.
 */
export async function dashboardLink(tokens: TokenStore, controlUrl: string, options: { role: Role; expiresAt?: Date; name?: string }): Promise<DashboardLink> {
  const name = options.name ?? `dashboard-${options.role}`;
  const token = await tokens.add(options.role, name, options.expiresAt ? { expiresAt: options.expiresAt } : {});
  return { url: dashboardUrl(controlUrl, token), role: options.role, name, expiresAt: options.expiresAt?.toISOString() ?? null };
}
