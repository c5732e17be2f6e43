/**
 * kill -9 of the feedback writer mid-stream: after a restart every row is present exactly
 * once. The writer runs as a child process this test starts and kills (never a service).
 */
import test from 'ava';
import { downstreamFixture, feedback } from '../support/downstream.ts';
import { killHard, startDownstreamProcess } from '../support/downstream-process.ts';

test('kill -9 the writer mid-stream, restart: every feedback row present exactly once', async (t) => {
  const f = await downstreamFixture(t, 'writer-crash');
  const args = ['--parts', 'feedback-writer', '--keyspace', f.keyspace, '--feedback-topic', f.topic,
    '--rejected-feedback-topic', f.rejectedTopic, '--feedback-group', f.groupId, '--redis-key-prefix', f.keyPrefix];
  const rows = Array.from({ length: 3000 }, (_, i) => feedback({ customer_id: `c${i % 97}`, feedback_id: `crash-${i}` }));
  await f.produce(rows.slice(0, 1500));

  const first = await startDownstreamProcess(args);
  t.teardown(() => killHard(first.child));
  const deadline = Date.now() + 60_000;
  let written = 0;
  while (written === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    written = await f.count('feedback_by_variant');
  }
  await killHard(first.child);
  t.log(`killed the writer after ${written} rows were written`);
  t.true(written > 0, first.logs());
  await f.produce(rows.slice(1500));

  const second = await startDownstreamProcess(args);
  t.teardown(() => killHard(second.child));
  // Generous: the restarted writer first waits out the killed member's session, and a
  // loaded 2-core machine slows the rest; correctness, not speed, is asserted here.
  await f.waitForCommitted(240_000).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\nrestarted writer's log:\n${second.logs()}`);
  });
  t.is(await f.count('feedback_by_variant'), rows.length);
  t.is(await f.count('feedback_by_customer'), rows.length);
  const ids = await f.cassandra.execute(`SELECT feedback_id FROM ${f.keyspace}.feedback_by_variant`, [], { fetchSize: 5000 });
  t.is(new Set(ids.rows.map((r) => r.get('feedback_id') as string)).size, rows.length);
});
