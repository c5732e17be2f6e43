/**
 * When upstream accepted each recent record (its `ingested_at`), by record id: the history
 * writer notes them as it reads records.normalized, the feedback writer looks up the
 * records a feedback row is about to measure ingest → Cassandra row. Feedback does not
 * carry its records' ingest time (shared/schemas/feedback.avsc), and the history writer of
 * the same process reads every record anyway, so this costs no extra read.
 *
 * Bounded: the oldest ids are forgotten first. A row whose records are unknown (forgotten,
 * read by another process, or read before this process started) is not measured.
 */
export class IngestTimes {
  readonly #times = new Map<string, number>();

  constructor(private readonly capacity = 200_000) {}

  note(recordId: string, ingestedAt: number): void {
    this.#times.delete(recordId); // re-inserted: a re-read record counts as recent
    this.#times.set(recordId, ingestedAt);
    if (this.#times.size > this.capacity) {
      const oldest = this.#times.keys().next();
      if (!oldest.done) this.#times.delete(oldest.value);
    }
  }

  /** The earliest ingest time of these records (epoch ms), or null when none is known. */
  earliest(recordIds: readonly string[]): number | null {
    let earliest: number | null = null;
    for (const id of recordIds) {
      const at = this.#times.get(id);
      if (at !== undefined && (earliest === null || at < earliest)) earliest = at;
    }
    return earliest;
  }
}
