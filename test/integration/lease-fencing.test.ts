/**
 * Fencing: a leader that paused past its lease (no tick, no renewal, nothing released) and
 * resumes after another orchestrator took over must not act on its stale view. Its write
 * (here: the launch intent written before any spawn) is refused by the lease's token, it
 * steps down, the record keeps the successor's values and nothing was spawned. No Spark:
 * the refused launch never gets as far as spark-submit.
 */
import test from 'ava';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobLauncher } from '../../infra/orchestrator/launcher.ts';
import { jobIdFor, type JobRecord } from '../../infra/orchestrator/state.ts';
import { startTestOrchestrator } from '../support/orchestrator.ts';

test('a paused leader that resumes after its lease moved on is refused and steps down', async (t) => {
  // A lease long enough that the second leader's tick (a /proc scan, Kafka and Redis reads) fits in it on a loaded
  // 2-core CI machine: with 1.5 s it once lost the lease mid-tick, so its own write was refused.
  const o = await startTestOrchestrator('fence', { DIAMOND_ORCHESTRATOR_LEASE: '5s', DIAMOND_ORCHESTRATOR_TICK: '200ms' });
  t.teardown(() => o.teardown());
  await o.reconciler.stop(); // releases the lease: the two below compete for it
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);

  const first = o.secondOrchestrator();
  await first.connect();
  t.teardown(() => first.stop());
  t.true(await first.lead(), 'the first orchestrator leads');
  const store = first.store; // its Redis connection stays up while it is paused

  // The first "pauses": no tick, no renewal. Its lease expires; the second takes over.
  const deadline = Date.now() + 20_000;
  while ((await store.leaseHolder()) === first.id) {
    if (Date.now() > deadline) throw new Error('the first orchestrator\'s lease never expired');
    await sleep(100);
  }
  const second = o.secondOrchestrator();
  await second.connect();
  t.teardown(() => second.stop());
  t.true(await second.lead(), 'the second orchestrator leads once the lease expired');

  // The second writes the job's record (an undeployed job → stopped, fenced with its token).
  const seed: JobRecord = {
    jobId, usecase: 'data_quality', variant: 'A', state: 'backoff', generation: 1, current: null, next: null, retiring: [],
    restarts: 0, crashes: [], nextStartAt: null, lastError: null, lastLogFile: null, updatedAt: Date.now(),
  };
  await store.putJob(seed);
  await second.tick();
  const written = await store.getJob(jobId);
  t.is(written?.state, 'stopped', 'the second leader wrote the record');

  // Deployed meanwhile: the first, resuming with its stale token, would start the job.
  await store.putDeployment({ usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality'), version: 'v-fence' });
  await first.tick();

  t.false(first.isLeader, 'the refused leader stepped down');
  t.deepEqual(await store.getJob(jobId), written, 'the record keeps the second leader\'s values');
  t.is(await store.launchIntent(jobId), null, 'no launch intent was written');
  const launcher = new JobLauncher(o.config, o.options.topics, { jobs: o.options.jobsDir, checkpoints: o.options.checkpointsDir });
  t.deepEqual(launcher.jobProcesses(), [], 'nothing was spawned');
  t.true(await second.lead(), 'the second still leads');
  t.is(await store.leaseHolder(), second.id);
});
