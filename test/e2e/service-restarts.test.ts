/**
 * Kafka and Cassandra restarted while records stream through the whole diamond. Restarts
 * the shared servers, so this file runs last (ava.e2e.config.js) and, on a shared machine,
 * under the Spark lock; each test leaves the service running and healthy.
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { createLogger } from '../../shared/logger.ts';
import { assertUntouched, e2eDataset, deployExamples, jobSnapshot, startDiamond, waitForSent } from '../support/e2e.ts';
import { config } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });

test.serial('restart Kafka mid-stream: ingest refuses then resumes, jobs recover, every expected row exactly once', async (t) => {
  t.teardown(() => servicesUp(config, logger, { only: ['kafka'] }).then(() => undefined)); // even when the test failed half-way
  const d = await startDiamond(t, 'kafka-restart');
  const jobs = await deployExamples(d);
  const stream = d.stream(e2eDataset(), 150);
  await waitForSent(stream, 0.3);
  const [down] = await servicesDown(config, { only: ['kafka'] });
  t.true(down?.stopped, 'the broker this checkout started was stopped');
  await sleep(5_000);
  await servicesUp(config, logger, { only: ['kafka'] });

  // Every part uses Kafka, so any of them may have been restarted; what must hold is the result.
  await d.settle(t, stream, { jobs: Object.values(jobs), duplicatesAllowed: true, timeoutMs: 420_000 });
  for (const id of Object.values(jobs)) {
    const record = await d.job(id);
    t.is(record.state, 'running', `${id} running again`);
    t.log(`${id}: ${record.restarts} restarts${record.lastError ? ` (${record.lastError.slice(0, 160)})` : ''}`);
  }
  t.is(d.writerExit(), null, 'the writer rode out the outage');
});

test.serial('restart Cassandra mid-stream: the writer pauses and resumes, every expected row exactly once, no job touched', async (t) => {
  t.teardown(() => servicesUp(config, logger, { only: ['cassandra'] }).then(() => undefined));
  const d = await startDiamond(t, 'cassandra-restart');
  const jobs = await deployExamples(d);
  const all = await jobSnapshot(d, Object.values(jobs));
  const stream = d.stream(e2eDataset(), 150);
  await waitForSent(stream, 0.3);
  await d.waitForWritten(0);
  const [down] = await servicesDown(config, { only: ['cassandra'] });
  t.true(down?.stopped, 'the node this checkout started was stopped');
  await sleep(5_000);
  await servicesUp(config, logger, { only: ['cassandra'] });

  await d.settle(t, stream, { jobs: Object.values(jobs), timeoutMs: 420_000 });
  t.is(d.writerExit(), null, 'the writer paused and resumed, never exited');
  await assertUntouched(t, d, all);
});
