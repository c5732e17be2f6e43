/** Prometheus counters of the ingest API, rendered in the text exposition format by hand (a handful of series). */
export class IngestMetrics {
  readonly #requests = new Map<string, number>();
  readonly #records = new Map<string, number>();
  #requestSeconds = 0;

  countRequest(status: number, seconds: number): void {
    this.#requests.set(String(status), (this.#requests.get(String(status)) ?? 0) + 1);
    this.#requestSeconds += seconds;
  }

  countRecords(source: string, accepted: number, rejected: number): void {
    for (const [outcome, count] of [['accepted', accepted], ['rejected', rejected]] as const) {
      const key = `${source}\u0000${outcome}`;
      this.#records.set(key, (this.#records.get(key) ?? 0) + count);
    }
  }

  render(gauges: { inFlight: number }): string {
    const lines = [
      '# HELP diamond_ingest_requests_total HTTP ingest requests by status.',
      '# TYPE diamond_ingest_requests_total counter',
      ...[...this.#requests].map(([status, count]) => `diamond_ingest_requests_total{status="${status}"} ${count}`),
      '# HELP diamond_ingest_request_seconds_total Time spent answering ingest requests.',
      '# TYPE diamond_ingest_request_seconds_total counter',
      `diamond_ingest_request_seconds_total ${this.#requestSeconds}`,
      '# HELP diamond_ingest_records_total Records by source and outcome (accepted or rejected).',
      '# TYPE diamond_ingest_records_total counter',
      ...[...this.#records].map(([key, count]) => {
        const [source = '', outcome = ''] = key.split('\u0000');
        return `diamond_ingest_records_total{source="${escapeLabel(source)}",outcome="${outcome}"} ${count}`;
      }),
      '# HELP diamond_ingest_in_flight_messages Messages waiting for Kafka to acknowledge them.',
      '# TYPE diamond_ingest_in_flight_messages gauge',
      `diamond_ingest_in_flight_messages ${gauges.inFlight}`,
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${process.memoryUsage.rss()}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
