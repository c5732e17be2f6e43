/** Cassandra 5 through cassandra-driver: a keyspace per test, insert, select. */
import test from 'ava';
import { createCassandra } from '../../shared/cassandra.ts';
import { config, uniqueKeyspace } from '../support/env.ts';

test('create a keyspace and a table, insert rows, select them back', async (t) => {
  const keyspace = uniqueKeyspace('test_smoke');
  const client = createCassandra(config);
  await client.connect();
  t.teardown(async () => {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await client.shutdown();
  });
  await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await client.execute(`CREATE TABLE ${keyspace}.feedback (customer_id text, feedback_id text, score double, details map<text,text>, PRIMARY KEY ((customer_id), feedback_id))`);
  const insert = `INSERT INTO ${keyspace}.feedback (customer_id, feedback_id, score, details) VALUES (?, ?, ?, ?)`;
  const rows = Array.from({ length: 20 }, (_, i) => [i % 2 === 0 ? 'acme' : 'globex', `f-${String(i).padStart(2, '0')}`, i / 10, { n: String(i) }]);
  await Promise.all(rows.map((params) => client.execute(insert, params, { prepare: true })));
  // Upserts: writing a row again with the same key does not add one.
  await client.execute(insert, rows[0], { prepare: true });

  const result = await client.execute(`SELECT feedback_id, score, details FROM ${keyspace}.feedback WHERE customer_id = ?`, ['acme'], { prepare: true });
  t.deepEqual(result.rows.map((row) => row.get('feedback_id') as string), rows.filter((r) => r[0] === 'acme').map((r) => r[1] as string));
  t.deepEqual(result.rows[1]?.get('details'), { n: '2' });
  const count = await client.execute(`SELECT count(*) AS n FROM ${keyspace}.feedback`);
  t.is(Number(count.first()?.get('n')), 20);
});
