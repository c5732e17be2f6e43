/** Small helpers shared by the writers: UTC day of a timestamp, bounded-concurrency writes. */
import cassandra from 'cassandra-driver';
import type { CassandraClient } from '../shared/cassandra.ts';

/** The UTC calendar day of an epoch-millis timestamp: the day part of every partition key. */
export function utcDay(epochMillis: number): cassandra.types.LocalDate {
  return cassandra.types.LocalDate.fromString(new Date(epochMillis).toISOString().slice(0, 10));
}

/**
 * The write itself is refused, so it will fail again whatever happens to the cluster:
 * Cassandra answered "invalid request" (an oversized mutation) or the driver could not encode
 * a value (a key over 65,535 bytes is a RangeError before anything is sent). Everything else
 * (no host available, timeouts, unavailable, overloaded) is an outage and is retried.
 * Classified by the error's type and code, never by its message text.
 */
export function isPermanentWriteError(error: unknown): boolean {
  if (error instanceof RangeError) return (error as NodeJS.ErrnoException).code === 'ERR_OUT_OF_RANGE';
  if (!(error instanceof cassandra.errors.ResponseError)) return false;
  const codes = cassandra.types.responseErrorCodes;
  const code: number = error.code;
  return code === Number(codes.invalid) || code === Number(codes.syntaxError);
}

/** The poison policy both writers use: a message refused `maxAttempts` times goes to the rejected topic. */
export const WRITE_ATTEMPTS_BEFORE_REJECT = 3;

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

/**
 * Writes that start as soon as they are added, at most `concurrency` in flight, so a batch's
 * decoding overlaps with its writes. `drain()` resolves when Cassandra acknowledged every
 * write added, or rejects with the first failure. Writes are issued in the order added, and
 * the driver's client-side timestamps make a later write of the same row win.
 */
export class WritePool {
  readonly #client: CassandraClient;
  readonly #concurrency: number;
  readonly #queue: Statement[] = [];
  #inFlight = 0;
  #failure: Error | undefined = undefined;
  #idle: (() => void)[] = [];
  static readonly #options = { prepare: true, isIdempotent: true, consistency: cassandra.types.consistencies.localQuorum };

  constructor(client: CassandraClient, concurrency: number) {
    this.#client = client;
    this.#concurrency = concurrency;
  }

  add(statements: Iterable<Statement>): void {
    for (const statement of statements) this.#queue.push(statement);
    this.#pump();
  }

  async drain(): Promise<void> {
    while (this.#inFlight > 0 || (this.#queue.length > 0 && this.#failure === undefined)) {
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#queue.length > 0 && this.#failure === undefined) {
      const statement = this.#queue.shift()!;
      this.#inFlight++;
      this.#client.execute(statement.query, statement.params as unknown[], WritePool.#options).then(
        () => this.#settle(),
        (error: unknown) => {
          this.#failure ??= error instanceof Error ? error : new Error(String(error));
          this.#settle();
        },
      );
    }
  }

  #settle(): void {
    this.#inFlight--;
    this.#pump();
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }
}
