/** The downstream keyspace: created by migrations, idempotent, recorded in schema_migrations. */
import test from 'ava';
import { createCassandra } from '../../shared/cassandra.ts';
import { migrateKeyspace, RETENTION_SECONDS } from '../../downstream/migrations.ts';
import { config, uniqueKeyspace } from '../support/env.ts';

test('migrations create the tables with TTL and TWCS, record themselves, and rerun as a no-op', async (t) => {
  const keyspace = uniqueKeyspace('test_migrate');
  const client = createCassandra(config);
  await client.connect();
  t.teardown(async () => {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await client.shutdown();
  });

  t.deepEqual(await migrateKeyspace(client, keyspace), [1]);
  t.deepEqual(await migrateKeyspace(client, keyspace), []);

  const tables = await client.execute('SELECT table_name, default_time_to_live, compaction FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], { prepare: true });
  const byName = new Map(tables.rows.map((row) => [row.get('table_name') as string, row]));
  t.deepEqual([...byName.keys()].sort(), ['feedback_by_customer', 'feedback_by_variant', 'records_by_customer', 'schema_migrations']);
  for (const name of ['feedback_by_customer', 'feedback_by_variant', 'records_by_customer']) {
    const row = byName.get(name)!;
    t.is(row.get('default_time_to_live') as number, RETENTION_SECONDS, name);
    t.regex((row.get('compaction') as Record<string, string>)['class']!, /TimeWindowCompactionStrategy/, name);
  }
  const recorded = await client.execute(`SELECT version, name FROM ${keyspace}.schema_migrations`);
  t.deepEqual(recorded.rows.map((row) => row.get('version') as number), [1]);
});
