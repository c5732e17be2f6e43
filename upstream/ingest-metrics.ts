/**
 * The ingest API's series, on the process's prom-client registry:
 *   diamond_ingest_request_duration_seconds{method,route,status}   histogram (request-metrics.ts)
 *   diamond_ingest_records_total{source,outcome}                    counter, outcome accepted|rejected
 *   diamond_ingest_in_flight_messages                               gauge, read at scrape time
 */
import { Counter, Gauge } from 'prom-client';
import type { MetricsRegistry } from '../shared/metrics/registry.ts';

export class IngestMetrics {
  readonly #records: Counter<'source' | 'outcome'>;

  constructor(registry: MetricsRegistry, inFlight: () => number) {
    this.#records = new Counter({ name: 'diamond_ingest_records_total', help: 'Records received by source and outcome (accepted: written to records.normalized; rejected: to records.rejected).', labelNames: ['source', 'outcome'], registers: [registry] });
    new Gauge({
      name: 'diamond_ingest_in_flight_messages', help: 'Messages waiting for Kafka to acknowledge them.', registers: [registry],
      collect() { this.set(inFlight()); },
    });
  }

  countRecords(source: string, accepted: number, rejected: number): void {
    // Both series exist from a source's first request, so a rate of rejections is 0, not absent.
    this.#records.inc({ source, outcome: 'accepted' }, accepted);
    this.#records.inc({ source, outcome: 'rejected' }, rejected);
  }
}
