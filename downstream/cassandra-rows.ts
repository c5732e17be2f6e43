/** Small helpers shared by the writers: UTC day of a timestamp, bounded-concurrency writes. */
import cassandra from 'cassandra-driver';
import type { CassandraClient } from '../shared/cassandra.ts';

/** The UTC calendar day of an epoch-millis timestamp: the day part of every partition key. */
export function utcDay(epochMillis: number): cassandra.types.LocalDate {
  return cassandra.types.LocalDate.fromString(new Date(epochMillis).toISOString().slice(0, 10));
}

export interface Statement {
  readonly query: string;
  readonly params: readonly unknown[];
}

/**
 * Runs prepared statements with at most `concurrency` in flight; resolves when Cassandra
 * acknowledged every one (LOCAL_QUORUM), rejects on the first failure.
 */
export async function executeAll(client: CassandraClient, statements: readonly Statement[], concurrency: number): Promise<void> {
  let next = 0;
  const options = { prepare: true, isIdempotent: true, consistency: cassandra.types.consistencies.localQuorum };
  const worker = async (): Promise<void> => {
    while (next < statements.length) {
      const statement = statements[next++]!;
      await client.execute(statement.query, statement.params as unknown[], options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, statements.length) }, worker));
}
