/**
 * `diamond replay`: the job's group moves back to the offsets at the given time and the job
 * reprocesses from there — exactly the records produced since, nothing earlier; and the
 * stopped process's late progress reports do not move the group forward again.
 * Real Kafka, Redis, Spark; serial.
 */
import test from 'ava';
import { join } from 'node:path';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { deployUsecase, replayUsecase } from '../../infra/orchestrator/control.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { consumeAll, consumeUntil, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();

test.serial('replay reprocesses exactly the records since the given time', async (t) => {
  const o = await startTestOrchestrator('orch-replay');
  t.teardown(() => o.teardown());
  const registry = createRegistry(o.config);
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const ids = async (count: number): Promise<string[]> => {
    const messages = await consumeAll(kafka, o.options.topics.output, count, 120_000);
    return (await Promise.all(messages.map(async (m) => ((await registry.decode(m.value!)) as Feedback).record_ids.join(',')))).sort();
  };

  await o.produce([1, 2, 3].map((i) => customerRecord(`old-${i}`, `c${i}`, { amount: -i })));
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix);
  const first = await o.waitForJob(jobId, (r) => r.state === 'running');
  await ids(3);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const since = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 500));
  await o.produce([4, 5].map((i) => customerRecord(`new-${i}`, `c${i}`, { amount: -i })));
  t.deepEqual(await ids(5), ['new-4', 'new-5', 'old-1', 'old-2', 'old-3']);

  await t.throwsAsync(replayUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'B', since }, o.options.jobPrefix), { message: /not deployed/ });
  await t.throwsAsync(replayUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', since: 'yesterday' }, o.options.jobPrefix), { message: /not a time/ });
  await replayUsecase(o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', since }, o.options.jobPrefix);

  const replayed = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current !== null && r.current.groupPid !== first.current!.groupPid && r.retiring.length === 0);
  t.is(replayed.restarts, 0, 'a replay is not a crash');
  t.deepEqual(await ids(7), ['new-4', 'new-4', 'new-5', 'new-5', 'old-1', 'old-2', 'old-3'], 'the records since the time, again; nothing earlier');
  await t.throwsAsync(consumeUntil(kafka, o.options.topics.output, (m) => m.length > 7, 5000), undefined, 'nothing more');

  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  const deadline = Date.now() + 30_000;
  let committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
  while (JSON.stringify(committed) !== JSON.stringify(ends) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
  }
  t.deepEqual(committed, ends, 'the group is at the end again after the replay');
  const events = (await consumeUntil(kafka, o.options.topics.events, (m) => m.some((e) => e.value!.toString().includes('"replayed"')), 10_000)).map((m) => JSON.parse(m.value!.toString()) as { event: string; since?: string });
  t.like(events.find((e) => e.event === 'replayed'), { since });
});
