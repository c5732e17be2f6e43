/**
 * Versioned, idempotent CQL migrations of the downstream keyspace.
 *
 *   await migrateKeyspace(cassandra, 'diamond', { logger });
 *
 * Each migration runs once, in version order, and is recorded in `schema_migrations`.
 * Every statement is `IF NOT EXISTS`, so a migration interrupted half-way (or two
 * processes migrating at once) converges on a rerun instead of failing.
 *
 * Tables keep 60 days (default TTL) and compact by day (TimeWindowCompactionStrategy):
 * whole SSTables expire together instead of being rewritten. Partitions are bounded by
 * a day in every table.
 */
import type { CassandraClient } from '../shared/cassandra.ts';
import type { DiamondConfig } from '../shared/config.ts';
import type { Logger } from '../shared/logger.ts';

export const RETENTION_SECONDS = 60 * 24 * 3600;

/** Shards per (usecase, variant, day) partition of feedback_by_variant: keeps partitions small at 25M records/day. */
export const VARIANT_SHARDS = 64;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: (keyspace: string) => readonly string[];
}

const timeSeriesOptions = `default_time_to_live = ${RETENTION_SECONDS}
  AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}`;

const feedbackColumns = `
    feedback_id text, customer_id text, usecase text, variant text, version text,
    kind text, severity text, score double, message text,
    details map<text, text>, record_ids list<text>,
    event_time timestamp, produced_at timestamp, written_at timestamp`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'feedback and history tables',
    statements: (ks) => [
      // What a customer reads: its own feedback, one partition per customer and day
      // (of event_time), ordered by time so the API pages with a (time, id) cursor.
      `CREATE TABLE IF NOT EXISTS ${ks}.feedback_by_customer (day date, ${feedbackColumns},
        PRIMARY KEY ((customer_id, day), event_time, feedback_id)
      ) WITH CLUSTERING ORDER BY (event_time ASC, feedback_id ASC) AND ${timeSeriesOptions}`,
      // Every variant's output, delivered or not, for `diamond ab`.
      `CREATE TABLE IF NOT EXISTS ${ks}.feedback_by_variant (day date, shard int, ${feedbackColumns},
        PRIMARY KEY ((usecase, variant, day, shard), customer_id, feedback_id)
      ) WITH ${timeSeriesOptions}`,
      // 60-day history of normalized records per customer.
      `CREATE TABLE IF NOT EXISTS ${ks}.records_by_customer (
        customer_id text, day date, event_time timestamp, record_id text, source text, type text,
        amount double, currency text, attributes map<text, text>, ingested_at timestamp, written_at timestamp,
        PRIMARY KEY ((customer_id, day), event_time, record_id)
      ) WITH CLUSTERING ORDER BY (event_time ASC, record_id ASC) AND ${timeSeriesOptions}`,
    ],
  },
];

/** The keyspace's replication for the configured factor: in the local data center, so LOCAL_QUORUM means a majority of it. */
export function keyspaceReplication(cassandra: Pick<DiamondConfig['cassandra'], 'replicationFactor' | 'localDataCenter'>): string {
  if (cassandra.replicationFactor === 1) return "{'class': 'SimpleStrategy', 'replication_factor': 1}";
  return `{'class': 'NetworkTopologyStrategy', '${cassandra.localDataCenter.replace(/'/g, "''")}': ${cassandra.replicationFactor}}`;
}

export interface MigrateOptions {
  readonly logger?: Logger;
  /** Replication of a keyspace created here; existing keyspaces are left as they are. */
  readonly replication?: string;
  readonly migrations?: readonly Migration[];
}

/** Creates the keyspace if needed and runs the migrations it has not run yet. Returns the versions applied now. */
export async function migrateKeyspace(client: CassandraClient, keyspace: string, options: MigrateOptions = {}): Promise<number[]> {
  if (!/^[a-z][a-z0-9_]{0,47}$/.test(keyspace)) throw new Error(`"${keyspace}" is not a Cassandra keyspace name`);
  const replication = options.replication ?? "{'class': 'SimpleStrategy', 'replication_factor': 1}";
  await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ${replication}`);
  await client.execute(`CREATE TABLE IF NOT EXISTS ${keyspace}.schema_migrations (version int PRIMARY KEY, name text, applied_at timestamp)`);
  const done = new Set((await client.execute(`SELECT version FROM ${keyspace}.schema_migrations`)).rows.map((row) => row.get('version') as number));
  const applied: number[] = [];
  for (const migration of [...(options.migrations ?? MIGRATIONS)].sort((a, b) => a.version - b.version)) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.statements(keyspace)) await client.execute(statement);
    await client.execute(`INSERT INTO ${keyspace}.schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, [migration.version, migration.name, new Date()], { prepare: true });
    options.logger?.info({ keyspace, version: migration.version, name: migration.name }, 'migration applied');
    applied.push(migration.version);
  }
  return applied;
}
