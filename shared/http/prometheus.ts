/**
 * Counters and gauges rendered in the Prometheus text format for `/metrics` — the one
 * renderer of every Diamond process (a handful of series each, so no client library).
 *
 *   metrics.inc('diamond_ingest_requests_total', 'HTTP ingest requests by status', 1, { status: '202' });
 *   reply.type(PROMETHEUS_CONTENT_TYPE).send(metrics.render());
 */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4';

export class Metrics {
  readonly #values = new Map<string, { help: string; type: 'counter' | 'gauge'; series: Map<string, number> }>();

  inc(name: string, help: string, by = 1, labels: Readonly<Record<string, string>> = {}): void {
    this.#series(name, help, 'counter').set(labelText(labels), (this.#series(name, help, 'counter').get(labelText(labels)) ?? 0) + by);
  }

  set(name: string, help: string, value: number, labels: Readonly<Record<string, string>> = {}): void {
    this.#series(name, help, 'gauge').set(labelText(labels), value);
  }

  get(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.#values.get(name)?.series.get(labelText(labels)) ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, { help, type, series }] of this.#values) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`);
    }
    return lines.join('\n') + '\n';
  }

  #series(name: string, help: string, type: 'counter' | 'gauge'): Map<string, number> {
    let entry = this.#values.get(name);
    if (!entry) this.#values.set(name, (entry = { help, type, series: new Map() }));
    return entry.series;
  }
}

function labelText(labels: Readonly<Record<string, string>>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([key, value]) => `${key}="${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`).join(',')}}`;
}
