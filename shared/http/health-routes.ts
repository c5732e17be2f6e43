/**
 * The two health checks of every Diamond HTTP server, apart (Kubernetes' convention):
 * - `GET /livez`: the process is alive and its event loop answers; no dependency is asked,
 *   so an outage of Kafka or Cassandra never gets a healthy process restarted;
 * - `GET /readyz`: the dependencies it needs to serve are reachable (503 otherwise), so
 *   traffic waits for it.
 * `GET /healthz` stays an alias of /readyz, for the scripts and tests that poll it (the
 * platform supervisor polls /readyz).
 *
 *   registerHealthRoutes(app, { dependencies: 'Kafka', check: async () => ({ ready: kafkaReady(), body: { kafka: 'ok' } }) });
 */
import type { HttpServer, RouteSettings } from './server.ts';

export interface Readiness {
  readonly ready: boolean;
  /** Extra fields of the answer, e.g. `{ cassandra: 'unreachable' }`. */
  readonly body?: Readonly<Record<string, string | number>>;
}

export interface HealthRoutesOptions {
  /** Named in the OpenAPI summary, e.g. 'Kafka' or 'Cassandra'. */
  readonly dependencies: string;
  readonly check: () => Promise<Readiness>;
}

const PUBLIC: RouteSettings = { public: true };
export const HEALTH_SCHEMA = { type: 'object', properties: { status: { type: 'string' } }, additionalProperties: true } as const;

/** The answer of /readyz (and /healthz): 200 `{ status: 'ok', … }` or 503 `{ status: 'unavailable', … }`. */
export async function readinessAnswer(check: () => Promise<Readiness>): Promise<{ status: 200 | 503; body: Record<string, string | number> }> {
  const { ready, body } = await check().catch((): Readiness => ({ ready: false }));
  return { status: ready ? 200 : 503, body: { status: ready ? 'ok' : 'unavailable', ...body } };
}

export function registerHealthRoutes(app: HttpServer, options: HealthRoutesOptions): void {
  const response = { 200: HEALTH_SCHEMA, 503: HEALTH_SCHEMA };
  app.get('/livez', { config: PUBLIC, schema: { summary: 'Whether the process is alive (no dependency is checked)', security: [], response: { 200: HEALTH_SCHEMA } } }, async () => ({ status: 'ok' }));
  for (const [path, summary] of [['/readyz', `Whether ${options.dependencies} answers (503 otherwise)`], ['/healthz', 'Alias of /readyz, kept for existing pollers']] as const) {
    app.get(path, { config: PUBLIC, schema: { summary, security: [], response } }, async (_request, reply) => {
      const answer = await readinessAnswer(options.check);
      return reply.code(answer.status).send(answer.body);
    });
  }
}
