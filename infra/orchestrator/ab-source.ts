/**
 * The A/B comparison the control API serves (the same data `diamond ab --json` prints):
 * rollout weights from Redis, rows from Cassandra through downstream's report functions.
 * Cassandra is connected on first use, so the orchestrator runs without it; while it is
 * unreachable every report is a ServiceUnavailableError (503) with the fix.
 */
import type { Redis } from 'ioredis';
import { type AbReport, compareVariants, readVariantRows, RolloutStore, type Weights } from '../../downstream/index.ts';
import { createCassandra, type CassandraClient } from '../../shared/cassandra.ts';
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError, ServiceUnavailableError } from '../../shared/errors.ts';

export type AbComparison = AbReport & { readonly weights: Weights | null };

const HINT = 'the A/B report reads Cassandra: start it with `npx diamond services up` (or `npx diamond up`), or point DIAMOND_CASSANDRA_CONTACT_POINTS at a running cluster';

export class AbSource {
  #cassandra: Promise<CassandraClient> | null = null;

  /** `redis` without a key prefix: rollout weights live under `rollout:<usecase>`. */
  constructor(private readonly config: DiamondConfig, private readonly redis: Redis) {}

  /** Variants default to those with rollout weights, else A and B (as `diamond ab`). */
  async compare(usecase: string, days: number, variants?: readonly string[]): Promise<AbComparison> {
    const weights = await new RolloutStore(this.redis).get(usecase);
    const names = variants ?? (weights ? Object.keys(weights).sort() : ['A', 'B']);
    const cassandra = await this.connect();
    const { keyspace } = this.config.downstream;
    try {
      const found = await cassandra.execute('SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?', [keyspace], { prepare: true });
      if (found.rowLength === 0) {
        throw new DiamondError(`keyspace ${keyspace} does not exist yet`, { code: 'DIAMOND_KEYSPACE_MISSING', hint: 'run `npx diamond serve downstream` once (it migrates the keyspace), or set DIAMOND_CASSANDRA_KEYSPACE' });
      }
      const rows = await readVariantRows(cassandra, keyspace, usecase, names, days);
      return { ...compareVariants(usecase, days, rows), weights };
    } catch (error) {
      if (error instanceof DiamondError) throw error;
      throw new ServiceUnavailableError('Cassandra', this.config.cassandra.contactPoints.join(','), { hint: HINT, cause: error });
    }
  }

  async close(): Promise<void> {
    const pending = this.#cassandra;
    this.#cassandra = null;
    if (pending) await pending.then((client) => client.shutdown(), () => undefined).catch(() => undefined);
  }

  private connect(): Promise<CassandraClient> {
    if (this.#cassandra) return this.#cassandra;
    const connecting = (async () => {
      const client = createCassandra(this.config);
      try {
        await client.connect();
        return client;
      } catch (cause) {
        await client.shutdown().catch(() => undefined);
        throw new ServiceUnavailableError('Cassandra', this.config.cassandra.contactPoints.join(','), { hint: HINT, cause });
      }
    })();
    this.#cassandra = connecting;
    // A failed connection is tried again by the next request.
    connecting.catch(() => { if (this.#cassandra === connecting) this.#cassandra = null; });
    return connecting;
  }
}
