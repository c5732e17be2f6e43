/**
 * Supervision of a use case that crashes on its first batch with data: restarted with
 * backoff, attempts counted in Redis, then `crash-looping` with its error (file and line)
 * and no further starts; a redeploy of the fixed code lifts the loop (fresh counters, the
 * waiting record processed). A job whose manifest became invalid after its deploy exits
 * with code 3 and the orchestrator reports the code and the field to fix. Serial.
 */
import test from 'ava';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { metricValue } from '../../shared/metrics/registry.ts';
import { consumeAll, consumeUntil, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();
const eventsOf = (values: { value: Buffer | null }[]): { event: string; exitCode?: number | null; error?: string }[] => values.map((m) => JSON.parse(m.value!.toString()) as { event: string });

/** A copy of a fixture under a temp use case root, so the test can change its files. */
function copyFixture(projectRoot: string, name: string): string {
  const folder = join(mkdtempSync(join(tmpdir(), `diamond-${name}-`)), name);
  cpSync(join(projectRoot, 'test', 'integration', 'fixtures', 'usecases', name), folder, { recursive: true });
  return folder;
}

const FIXED_TRANSFORM = `from pyspark.sql import functions as F


def transform(records, ctx):
    return records.select(
        "customer_id", "event_time", F.lit("fixed").alias("kind"), F.lit("info").alias("severity"),
        F.concat(F.lit("fixed: "), "record_id").alias("message"), F.array("record_id").alias("record_ids"),
    )
`;

test.serial('a use case that crashes on every start ends crash-looping with its error, after N attempts; a redeploy of the fixed code lifts the loop', async (t) => {
  const o = await startTestOrchestrator('orch-crash', { DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '2', DIAMOND_ORCHESTRATOR_CRASH_WINDOW: '10m' });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('crashing', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('r-1', 'acme')]);
  const folder = copyFixture(o.config.projectRoot, 'crashing');
  const first = await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'crashing', variant: 'A', folder }, o.options.jobPrefix);

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
  const job = { job: jobId, usecase: 'crashing', variant: 'A' };
  t.is(await metricValue(o.reconciler.metrics.registry, 'diamond_job_restarts_total', { ...job, reason: 'crash' }), 1, "the restart is on the orchestrator's /metrics");

  const events = await consumeUntil(kafka, o.options.topics.events, (m) => eventsOf(m).some((e) => e.event === 'crash-looping'), 10_000);
  t.deepEqual(eventsOf(events).map((e) => e.event), ['starting', 'running', 'failed', 'restarted', 'running', 'failed', 'crash-looping']);

  // The data scientist fixes the code and deploys again: the loop is lifted, counters start over,
  // and the new version processes the record that waited (nothing was committed while it crashed).
  writeFileSync(join(folder, 'job.py'), FIXED_TRANSFORM);
  const fixed = await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'crashing', variant: 'A', folder }, o.options.jobPrefix);
  t.not(fixed.version, first.version);
  const running = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current?.version === fixed.version, 180_000);
  t.is(running.restarts, 0);
  t.deepEqual(running.crashes, []);
  t.is(running.lastError, null);
  const registry = createRegistry(o.config);
  const [output] = await consumeAll(kafka, o.options.topics.output, 1, 120_000);
  const feedback = (await registry.decode(output!.value!)) as Feedback;
  t.like(feedback, { kind: 'fixed', message: 'fixed: r-1', record_ids: ['r-1'], version: fixed.version });
  // The batch's progress report may reach the orchestrator after its output: wait for its row, then read the batch series.
  const rowsIn = (): Promise<number> => metricValue(o.reconciler.metrics.registry, 'diamond_job_rows_total', { ...job, kind: 'in' });
  for (const deadline = Date.now() + 60_000; (await rowsIn()) === 0 && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(await rowsIn(), 1, "the batch's input row is counted");
  t.true((await metricValue(o.reconciler.metrics.registry, 'diamond_job_batch_duration_seconds_count', job)) >= 1, 'its duration is observed');
  t.true((await metricValue(o.reconciler.metrics.registry, 'diamond_job_batch_rows_sum', job)) === 1);
  const after = eventsOf(await consumeUntil(kafka, o.options.topics.events, (m) => eventsOf(m).filter((e) => e.event === 'running').length >= 3, 30_000));
  const lifecycle = after.filter((e) => !e.event.startsWith('alert-')); // the crash-looping alert fires and resolves in between (orchestrator-alerts.test.ts)
  t.deepEqual(lifecycle.slice(7).map((e) => e.event), ['starting', 'running'], 'started again after the redeploy, not as a restart');
});

test.serial('a job whose manifest became invalid after its deploy exits with code 3; the orchestrator reports the code and the field to fix', async (t) => {
  const o = await startTestOrchestrator('orch-manifest', { DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '2', DIAMOND_ORCHESTRATOR_CRASH_WINDOW: '10m' });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('rejecting', 'A', o.options.jobPrefix);
  const folder = copyFixture(o.config.projectRoot, 'rejecting');
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'rejecting', variant: 'A', folder }, o.options.jobPrefix);
  const running = await o.waitForJob(jobId, (r) => r.state === 'running');

  // Someone edits the deployed folder; the next launch (after this one is killed) reads it.
  const manifest = join(folder, 'usecase.yaml');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(/^trigger: .*$/m, 'trigger: every so often'));
  process.kill(-running.current!.groupPid, 'SIGKILL');

  const looping = await o.waitForJob(jobId, (r) => r.state === 'crash-looping', 180_000);
  t.regex(looping.lastError ?? '', /^exited with code 3: .*usecase\.yaml is invalid:\n {2}- trigger: is 'every so often'/s);
  const events = eventsOf(await consumeUntil(kafka, o.options.topics.events, (m) => eventsOf(m).some((e) => e.event === 'crash-looping'), 10_000));
  const failures = events.filter((e) => e.event === 'failed');
  t.deepEqual(failures.map((e) => e.exitCode), [null, 3], 'killed, then exit code 3');
  t.regex(failures[1]?.error ?? '', /trigger: is 'every so often'/);
});

test.serial('deploy refuses an invalid manifest and says what to fix, before anything starts', async (t) => {
  const o = await startTestOrchestrator('orch-invalid');
  t.teardown(() => o.teardown());
  const error = await t.throwsAsync(deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'Z', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix));
  t.regex(error?.message ?? '', /no variant 'Z'.*use one of A/s);
  t.deepEqual(await o.reconciler.store.listDeployments(), []);
  t.deepEqual(await o.reconciler.store.listJobs(), []);
});
