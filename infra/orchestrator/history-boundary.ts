/**
 * Where the archived history ends in Kafka: a backfill reads the archive up to its last
 * committed batch N and the job's stream starts at that batch's end offsets, so no record is
 * processed by both and none by neither (docs/RUNS.md, "Backfill").
 *
 * Read from the archiver's Spark checkpoint for the records topic: `commits/N` exists once
 * batch N is done (its files are then in the sink's `_spark_metadata` log), and `offsets/N`
 * holds, after a version line and a metadata line, one JSON object per source: topic →
 * partition → the offset after the batch's last record.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ArchivedBoundary {
  /** The archive's last committed batch of the records topic. */
  readonly batch: number;
  /** Partition → offset after the last record that batch archived. */
  readonly offsets: Record<string, number>;
}

function latestBatch(dir: string): number | null {
  if (!existsSync(dir)) return null;
  const ids = readdirSync(dir).filter((name) => /^\d+$/.test(name)).map(Number);
  return ids.length === 0 ? null : Math.max(...ids);
}

/** null while the archiver has committed no batch of `topic` (or runs with another checkpoint). */
export function archivedBoundary(recordsCheckpoint: string, topic: string): ArchivedBoundary | null {
  const batch = latestBatch(join(recordsCheckpoint, 'commits'));
  if (batch === null) return null;
  const file = join(recordsCheckpoint, 'offsets', String(batch));
  if (!existsSync(file)) return null;
  for (const line of readFileSync(file, 'utf8').split('\n').slice(2)) {
    if (line.trim() === '') continue;
    const sources = JSON.parse(line) as Record<string, Record<string, number> | undefined>;
    const offsets = sources[topic];
    if (offsets) return { batch, offsets: Object.fromEntries(Object.entries(offsets).map(([partition, offset]) => [partition, Number(offset)])) };
  }
  return null;
}

/** The archiver's checkpoint of the records topic, under its folder (history-archive.ts). */
export function recordsCheckpointOf(historyArchiveDir: string): string {
  return join(historyArchiveDir, 'checkpoint', 'records');
}
