/**
 * Supervision of jobs that fail without raising: a job that hangs in its batch (alive, its
 * offsets never move while input waits) is detected as stalled, killed and restarted, and
 * ends crash-looping when it keeps stalling; a job whose process exits with a code is
 * reported with that code. Real Kafka, Redis, Spark; serial.
 */
import test from 'ava';
import { join } from 'node:path';
import { errorMessage } from '../../shared/errors.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { consumeUntil, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();
const fixture = (name: string): string => join(process.cwd(), 'test', 'integration', 'fixtures', 'usecases', name);
/** Deploys a use case of the test orchestrator; a refusal (validation, registry, budget) says it was the deploy. */
async function deploy(o: TestOrchestrator, usecase: string, folder: string): Promise<void> {
  try {
    await deployUsecase(o.config, o.reconciler.store, null, { usecase, variant: 'A', folder }, o.options.jobPrefix);
  } catch (error) {
    throw new Error(`deploying ${usecase} from ${folder} failed: ${errorMessage(error)}`, { cause: error });
  }
}
const eventNames = (values: { value: Buffer | null }[]): string[] => values.map((m) => (JSON.parse(m.value!.toString()) as { event: string }).event);

test.serial('a hanging job is detected as stalled, restarted, and crash-looping when it keeps hanging', async (t) => {
  const o = await startTestOrchestrator('orch-stall', { DIAMOND_ORCHESTRATOR_STALL_TIMEOUT: '12s', DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '2' });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('hanging', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('r-1', 'acme'), customerRecord('r-2', 'acme')]);
  await deploy(o, 'hanging', fixture('hanging'));

  const first = await o.waitForJob(jobId, (r) => r.state === 'running');
  const looping = await o.waitForJob(jobId, (r) => r.state === 'crash-looping', 300_000);
  t.is(looping.restarts, 1, 'restarted once after the first stall');
  t.regex(looping.lastError ?? '', /stalled: committed offsets have not advanced for \d+ s while 2 records wait/);
  t.is(looping.current, null);
  await o.waitForJob(jobId, (r) => r.retiring.length === 0, 30_000);
  t.throws(() => process.kill(first.current!.groupPid, 0), undefined, 'the hung process group was killed');

  const events = eventNames(await consumeUntil(kafka, o.options.topics.events, (m) => eventNames(m).includes('crash-looping'), 10_000));
  t.deepEqual(events.filter((e) => e === 'stalled').length, 2);
  t.false(events.includes('failed'), 'a stall is not reported as an exit');
});

test.serial('a job that exits with a code is reported with it', async (t) => {
  const o = await startTestOrchestrator('orch-exit', { DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '1' });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('exiting', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('r-1', 'acme')]);
  await deploy(o, 'exiting', fixture('exiting'));
  const looping = await o.waitForJob(jobId, (r) => r.state === 'crash-looping', 240_000);
  t.regex(looping.lastError ?? '', /^exited with code 7/);
  t.is(looping.restarts, 0);
});

test.serial('a job that never reports after its launch is restarted (start timeout)', async (t) => {
  // A start timeout shorter than Spark's startup: the job cannot report in time.
  const o = await startTestOrchestrator('orch-start', { DIAMOND_ORCHESTRATOR_START_TIMEOUT: '2s', DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '2' });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  await deploy(o, 'data_quality', join(o.config.projectRoot, 'usecases', 'data_quality'));
  const looping = await o.waitForJob(jobId, (r) => r.state === 'crash-looping' && r.retiring.length === 0, 120_000);
  t.is(looping.restarts, 1);
  t.regex(looping.lastError ?? '', /never reported in the \d+ s since its launch/);
});
