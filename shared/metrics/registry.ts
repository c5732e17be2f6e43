/**
 * The Prometheus registry of one Diamond process, on prom-client. Each service builds its
 * own registry (never prom-client's global one): tests run an upstream, a downstream and an
 * orchestrator in one Node process, and their series must not mix.
 *
 *   const registry = createMetricsRegistry();
 *   const rows = new Counter({ name: 'diamond_feedback_rows_written_total', help: '…', registers: [registry] });
 *   reply.type(registry.contentType).send(await registry.metrics());
 */
import { collectDefaultMetrics, Registry, type MetricValueWithName } from 'prom-client';

export type MetricsRegistry = Registry;

/** A registry with prom-client's default process metrics (CPU, memory, event loop lag, GC, handles). */
export function createMetricsRegistry(): MetricsRegistry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The current value of one series (0 when it was never set), e.g. in tests and benchmarks:
 * `await metricValue(registry, 'diamond_feedback_rows_written_total', { table: 'feedback_by_variant' })`.
 * For a histogram, name its `_count` or `_sum` series.
 */
export async function metricValue(registry: MetricsRegistry, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const family = registry.getSingleMetric(name) ?? registry.getSingleMetric(name.replace(/_(count|sum)$/, ''));
  if (!family) return 0;
  const values: MetricValueWithName<string>[] = (await family.get()).values;
  const wanted = Object.entries(labels);
  const series = values.find((value) => (value.metricName ?? name) === name && wanted.every(([key, expected]) => String(value.labels[key]) === expected));
  return series?.value ?? 0;
}
