/**
 * Operator-only routes on a server whose other callers are customers (the ingest API's
 * sources, the feedback API's customers): `/metrics` there needs an operator token with the
 * viewer role, the same tokens as the control API (shared/operator-tokens.ts). Prometheus
 * sends one with `authorization: { credentials_file: … }` in its scrape config.
 *
 *   app.get('/metrics', { onRequest: requireOperator(tokens, 'viewer') }, handler);
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import { roleAllows, type Role, type TokenStore } from '../operator-tokens.ts';
import { bearerToken } from './bearer.ts';

export function requireOperator(tokens: TokenStore, role: Role): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const presented = bearerToken(request.headers.authorization);
    const grant = presented ? await tokens.verify(presented) : null;
    if (!grant) {
      throw new ApiError('DIAMOND_UNAUTHORIZED', 'this call needs an operator token: Authorization: Bearer <token>', `create one with \`npx diamond token add --role ${role}\``, { 'WWW-Authenticate': 'Bearer' });
    }
    if (!roleAllows(grant.role, role)) {
      throw new ApiError('DIAMOND_FORBIDDEN', `this call needs the ${role} role; token "${grant.name}" has the ${grant.role} role`, `ask an admin for a ${role} token`);
    }
  };
}
