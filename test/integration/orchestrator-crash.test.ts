/**
 * Supervision of a use case that crashes on its first batch with data: restarted with
 * backoff, attempts counted in Redis, then `crash-looping` with its error (file and line)
 * and no further starts; a redeploy lifts the loop. Two Spark starts; serial.
 */
import test from 'ava';
import { join } from 'node:path';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { consumeUntil, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();

test.serial('a use case that crashes on every start ends crash-looping with its error, after N attempts', async (t) => {
  const o = await startTestOrchestrator('orch-crash', { DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '2', DIAMOND_ORCHESTRATOR_CRASH_WINDOW: '10m' });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('crashing', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('r-1', 'acme')]);
  const folder = join(o.config.projectRoot, 'test', 'integration', 'fixtures', 'usecases', 'crashing');
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'crashing', variant: 'A', folder }, o.options.jobPrefix);

  const looping = await o.waitForJob(jobId, (r) => r.state === 'crash-looping', 240_000);
  t.is(looping.restarts, 1, 'one restart, then the second crash in the window stops the restarts');
  t.is(looping.crashes.length, 2);
  t.regex(looping.lastError ?? '', /exited with code 2/);
  t.regex(looping.lastError ?? '', /job\.py/, 'names the user file');
  t.is(looping.current, null);

  // No more restarts while crash-looping.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const still = await o.reconciler.store.getJob(jobId);
  t.is(still?.state, 'crash-looping');
  t.is(still?.restarts, 1);

  const events = await consumeUntil(kafka, o.options.topics.events, (m) => m.some((e) => e.value!.toString().includes('"crash-looping"')), 10_000);
  const names = events.map((e) => (JSON.parse(e.value!.toString()) as { event: string }).event);
  t.deepEqual(names, ['starting', 'running', 'failed', 'restarted', 'running', 'failed', 'crash-looping']);
});

test.serial('deploy refuses an invalid manifest and says what to fix, before anything starts', async (t) => {
  const o = await startTestOrchestrator('orch-invalid');
  t.teardown(() => o.teardown());
  const error = await t.throwsAsync(deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'Z', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix));
  t.regex(error?.message ?? '', /no variant 'Z'.*use one of A/s);
  t.deepEqual(await o.reconciler.store.listDeployments(), []);
  t.deepEqual(await o.reconciler.store.listJobs(), []);
});
