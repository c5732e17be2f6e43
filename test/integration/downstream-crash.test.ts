/**
 * kill -9 of the feedback writer mid-stream: after a restart every row is present exactly
 * once. The writer runs as a child process this test starts and kills (never a service).
 *
 * The kill must hit with data in flight, or "exactly once" proves nothing: the test asserts
 * that, when the writer died, fewer rows were written than sent and its group had committed
 * less than the topic's end (so the restarted writer had work the first one left).
 */
import test from 'ava';
import { downstreamFixture, feedback } from '../support/downstream.ts';
import { killHard, startDownstreamProcess } from '../support/downstream-process.ts';
import { sumOffsets } from '../support/env.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';

test('kill -9 the writer mid-stream, restart: every feedback row present exactly once', async (t) => {
  const f = await downstreamFixture(t, 'writer-crash');
  const args = ['--parts', 'feedback-writer', '--keyspace', f.keyspace, '--feedback-topic', f.topic,
    '--rejected-feedback-topic', f.rejectedTopic, '--feedback-group', f.groupId, '--redis-key-prefix', f.keyPrefix];
  const rows = Array.from({ length: 6000 }, (_, i) => feedback({ customer_id: `c${i % 97}`, feedback_id: `crash-${i}` }));
  // Enough for several of the writer's batches, so the kill lands between two of them or in one.
  await f.produce(rows.slice(0, 3000));

  const first = await startDownstreamProcess(args);
  t.teardown(() => killHard(first.child));
  const deadline = Date.now() + 60_000;
  let written = 0;
  while (written === 0) {
    if (Date.now() > deadline) throw new Error(`the writer wrote no row in 60 s:\n${first.logs()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    written = await f.count('feedback_by_variant');
  }
  await killHard(first.child);
  // Read after the process is gone: Cassandra may still apply writes it had received.
  const [writtenAtKill, committedAtKill, endAtKill] = [await f.count('feedback_by_variant'), await readJobOffsets(f.admin, f.groupId, f.topic), await topicEndOffsets(f.admin, f.topic)];
  t.log(`killed the writer with ${writtenAtKill} of 3000 rows written, committed ${JSON.stringify(committedAtKill)} of ${JSON.stringify(endAtKill)}`);
  t.true(writtenAtKill > 0 && writtenAtKill < 3000, `in flight: ${writtenAtKill} of 3000 rows written when the writer died`);
  t.true(sumOffsets(committedAtKill) < sumOffsets(endAtKill), `in flight: committed ${JSON.stringify(committedAtKill)} below the end ${JSON.stringify(endAtKill)}`);
  await f.produce(rows.slice(3000));

  const second = await startDownstreamProcess(args);
  t.teardown(() => killHard(second.child));
  // Generous: the restarted writer first waits out the killed member's session, and a
  // loaded 2-core machine slows the rest; correctness, not speed, is asserted here.
  await f.waitForCommitted(240_000).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\nrestarted writer's log:\n${second.logs()}`);
  });
  const ids = await f.cassandra.execute(`SELECT feedback_id FROM ${f.keyspace}.feedback_by_variant`, [], { fetchSize: 10_000 });
  const seen = new Set(ids.rows.map((r) => r.get('feedback_id') as string));
  t.deepEqual(rows.map((r) => r.feedback_id).filter((id) => !seen.has(id)).slice(0, 10), [], 'no row missing (a commit before the write would lose the rows in flight)');
  t.is(seen.size, rows.length, 'no row that was not sent');
  t.is(await f.count('feedback_by_variant'), rows.length);
  t.is(await f.count('feedback_by_customer'), rows.length);
});
