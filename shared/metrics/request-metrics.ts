/**
 * Request latency of an HTTP API, by route pattern and status:
 * `<api>_request_duration_seconds{method, route, status}`. The route is the pattern
 * (`/v1/jobs/:usecase/:variant/logs`), not the path, so ids never become labels; a request
 * that matched no route is `route="unmatched"`.
 */
import { Histogram } from 'prom-client';
import type { HttpServer } from '../http/server.ts';
import type { MetricsRegistry } from './registry.ts';

/** Seconds: from a cached key check (sub-millisecond) to a batch waiting on Kafka acks=all. */
export const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function observeRequests(app: HttpServer, registry: MetricsRegistry, api: string, help: string): Histogram<'method' | 'route' | 'status'> {
  const histogram = new Histogram({
    name: `${api}_request_duration_seconds`, help, labelNames: ['method', 'route', 'status'], buckets: REQUEST_BUCKETS, registers: [registry],
  });
  app.addHook('onResponse', (request, reply, done) => {
    // A hijacked stream (SSE, followed logs) is observed when the server ends it, with the stream's
    // duration; one whose client left first never finishes its response and is not observed.
    histogram.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
  return histogram;
}
