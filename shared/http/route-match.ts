/**
 * Which methods a concrete path has among the registered routes — what tells a 405 (known
 * path, other method) from a 404. Patterns use `:name` segments, as fastify's.
 */
export interface RoutePattern {
  readonly method: string;
  /** Segments; `:name` captures one non-empty path segment. */
  readonly path: string;
}

export type RouteMatch<R extends RoutePattern> =
  | { readonly kind: 'route'; readonly route: R; readonly params: Readonly<Record<string, string>> }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'not-found' };

export function matchPath(pattern: string, pathname: string): Record<string, string> | null {
  const want = pattern.split('/');
  const got = pathname.replace(/\/+$/, '').split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const segment = want[i]!;
    const actual = got[i]!;
    if (segment.startsWith(':')) {
      let value: string;
      try {
        value = decodeURIComponent(actual);
      } catch {
        return null;
      }
      if (value === '') return null;
      params[segment.slice(1)] = value;
    } else if (segment !== actual) {
      return null;
    }
  }
  return params;
}

export function matchRoute<R extends RoutePattern>(method: string, pathname: string, routes: readonly R[]): RouteMatch<R> {
  const allow: string[] = [];
  for (const route of routes) {
    const params = matchPath(route.path, pathname);
    if (!params) continue;
    if (route.method === method) return { kind: 'route', route, params };
    if (!allow.includes(route.method)) allow.push(route.method);
  }
  return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
}
