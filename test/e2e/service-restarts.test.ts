/**
 * Cassandra restarted while records stream through the whole diamond. Restarts the server it
 * runs against, so this file runs last (ava.e2e.config.js), under the Spark lock, and only
 * against your own services (see OPERATING.md); the test leaves the service running. A Kafka
 * restart mid-stream is e2e/kafka-outage.test.ts (the broker down for 3 minutes, the same
 * assertions) and, for ingest alone, durability/kafka-restart.test.ts.
 *
 * Each restart is shown to hit data in flight (the stream still sending; the jobs', or the
 * writer's, committed offsets below their topic's end), its effect is observed (ingest refused
 * requests; the writer retried), then the exact end state is asserted.
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { createLogger } from '../../shared/logger.ts';
import { assertReprocessing, assertSending, assertUntouched, e2eDataset, deployExamples, jobSnapshot, midStream, startDiamond } from '../support/e2e.ts';
import { config, sumOffsets } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });

test.serial('restart Cassandra mid-stream: the writer pauses and resumes, every expected row exactly once, no job touched', async (t) => {
  t.teardown(() => servicesUp(config, logger, { only: ['cassandra'] }).then(() => undefined));
  const d = await startDiamond(t, 'cassandra-restart');
  const jobs = await deployExamples(d);
  const all = await jobSnapshot(d, Object.values(jobs));
  const stream = d.stream(e2eDataset(), 150);
  await midStream(stream, () => d.waitForWritten(0));
  assertSending(t, stream);
  const writtenBefore = await d.rowsWritten();
  const retryLine = /batch not written; partition paused, retrying/g;
  const retriesBefore = d.writerLog().match(retryLine)?.length ?? 0;
  const [down] = await servicesDown(config, { only: ['cassandra'] });
  t.true(down?.stopped, 'the node this checkout started was stopped');
  // The writer keeps up with the sparse feedback, so "in flight" is shown while the node is
  // down: feedback arrives that the writer cannot write (its committed offsets stay below the end).
  const whileDown = await d.waitForWriterBehind();
  assertSending(t, stream);
  t.log(`while the node was down: writer committed ${JSON.stringify(whileDown.committed)}, feedback topic end ${JSON.stringify(whileDown.ends)}; ${writtenBefore} rows written before`);
  t.true(sumOffsets(whileDown.committed) < sumOffsets(whileDown.ends), 'in flight: feedback sent that the writer had not written while the node was down');
  await sleep(5_000);
  await servicesUp(config, logger, { only: ['cassandra'] });
  // Read before the settle's traffic pushes them out of the kept log.
  const retries = (d.writerLog().match(retryLine)?.length ?? 0) - retriesBefore;
  t.true(retries > 0, `the writer retried its batch while the node was down (${retries} retries logged)`);

  await d.settle(t, stream, { jobs: Object.values(jobs), timeoutMs: 420_000 });
  t.is(d.writerExit(), null, 'the writer paused and resumed, never exited');
  await assertUntouched(t, d, all);
  assertReprocessing(t, await d.feedbackOnTopic(), new Map(), Object.values(jobs));
});
