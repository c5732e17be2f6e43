/**
 * Adoption, the leader lease and a hot upgrade, with real Kafka, Redis and Spark:
 * a restarted orchestrator adopts the running job (same pid, no second start); a second
 * orchestrator on the same state does not lead; deploying a changed folder starts the new
 * version warm, stops the old one gracefully (exit 0) and starts the new one at exactly its
 * committed offsets: no feedback missing, none from both versions; undeploy stops it
 * gracefully. A second use case runs beside it the
 * whole time: its process is never restarted and its output has no gap. Serial.
 */
import test from 'ava';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { deployUsecase, undeployUsecase } from '../../infra/orchestrator/control.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { consumeUntil, testKafka, type ConsumedMessage } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();

interface LifecycleMessage { event: string; job?: string; version?: string; exitCode?: number | null; pid?: number; offsets?: Record<string, number>; pauseMs?: number }
const lifecycle = (messages: ConsumedMessage[]): LifecycleMessage[] => messages.map((m) => JSON.parse(m.value!.toString()) as LifecycleMessage);

test.serial('adopt after an orchestrator restart, one leader, then upgrade one job without a gap; the other job is untouched', async (t) => {
  const o = await startTestOrchestrator('orch-up');
  t.teardown(() => o.teardown());
  const registry = createRegistry(o.config);
  const folder = join(mkdtempSync(join(tmpdir(), 'diamond-upgrade-')), 'data_quality');
  cpSync(join(o.config.projectRoot, 'usecases', 'data_quality'), folder, { recursive: true });
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const deploy = () => deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder }, o.options.jobPrefix);
  // The bystander: the same logic under another name, deployed first and never touched.
  const bystanderFolder = join(mkdtempSync(join(tmpdir(), 'diamond-bystander-')), 'bystander');
  cpSync(join(o.config.projectRoot, 'usecases', 'data_quality'), bystanderFolder, { recursive: true });
  const manifest = join(bystanderFolder, 'usecase.yaml');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('name: data_quality', 'name: bystander'));
  const bystanderId = jobIdFor('bystander', 'A', o.options.jobPrefix);
  const feedbackOf = async (usecase: string, messages: ConsumedMessage[]): Promise<string[]> => {
    const rows = await Promise.all(messages.map(async (m) => (await registry.decode(m.value!)) as Feedback));
    return [...new Set(rows.filter((f) => f.usecase === usecase).map((f) => f.record_ids.join(',')))].sort();
  };

  await o.produce([1, 2].map((i) => customerRecord(`v1-${i}`, `c${i}`, { amount: -i })));
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'bystander', variant: 'A', folder: bystanderFolder }, o.options.jobPrefix);
  const bystander = await o.waitForJob(bystanderId, (r) => r.state === 'running');
  const v1 = await deploy();
  const running = await o.waitForJob(jobId, (r) => r.state === 'running');
  await consumeUntil(kafka, o.options.topics.output, (m) => m.length >= 4, 120_000);

  // Restart the orchestrator: it adopts the live job instead of starting another.
  await o.restartOrchestrator();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const adopted = await o.reconciler.store.getJob(jobId);
  t.is(adopted?.current?.groupPid, running.current!.groupPid, 'same process group');
  t.is(adopted?.state, 'running');
  t.is(adopted?.restarts, 0);

  // A second orchestrator on the same state does not lead while the first holds the lease.
  const second = o.secondOrchestrator();
  await second.connect();
  const secondLoop = second.run();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.false(second.isLeader);
  t.true(o.reconciler.isLeader);
  await second.stop();
  await secondLoop;

  // A changed folder is a new version: upgrade this job only.
  appendFileSync(join(folder, 'job.py'), '\n# v2: same logic, new version\n');
  const v2 = await deploy();
  t.not(v2.version, v1.version);
  await o.produce([3, 4].map((i) => customerRecord(`v2-${i}`, `c${i}`, { amount: -i })));
  const upgraded = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current?.version === v2.version && r.retiring.length === 0);
  t.not(upgraded.current!.groupPid, running.current!.groupPid);
  t.is(upgraded.restarts, 0);

  const events = lifecycle(await consumeUntil(kafka, o.options.topics.events, (m) => lifecycle(m).some((e) => e.event === 'stopped'), 30_000));
  t.deepEqual(events.find((e) => e.event === 'stopped'), { ...events.find((e) => e.event === 'stopped'), version: v1.version, exitCode: 0 }, 'the old version stopped gracefully');
  t.true(events.some((e) => e.event === 'adopted' && e.pid === running.current!.groupPid));
  t.false(events.some((e) => e.event === 'failed'));
  const handedOver = events.find((e) => e.event === 'running' && e.version === v2.version);
  t.truthy(handedOver?.offsets, 'the new version started at the boundary its running event names');
  t.log(`handed over at ${JSON.stringify(handedOver?.offsets)} after a pause of ${handedOver?.pauseMs} ms`);

  await o.produce([5].map((i) => customerRecord(`v2-${i}`, `c${i}`, { amount: -i })));
  const all = await consumeUntil(kafka, o.options.topics.output, (m) => m.some((x) => x.value!.toString('latin1').includes('v2-5') && x.value!.toString('latin1').includes('data_quality')), 120_000);
  t.deepEqual(await feedbackOf('data_quality', all), ['v1-1', 'v1-2', 'v2-3', 'v2-4', 'v2-5'], 'no record skipped across the upgrade');
  // Handed over at a boundary: each record's feedback comes from one version only.
  const versions = new Map<string, Set<string>>();
  for (const m of all) {
    const f = (await registry.decode(m.value!)) as Feedback;
    if (f.usecase === 'data_quality') for (const id of f.record_ids) versions.set(id, (versions.get(id) ?? new Set()).add(f.version));
  }
  t.deepEqual([...versions].filter(([, v]) => v.size > 1).map(([id]) => id), [], 'no record processed by both versions');
  t.deepEqual([...versions.get('v1-1')!], [v1.version]);
  t.deepEqual([...versions.get('v2-5')!], [v2.version]);

  // Undeploy: the job finishes its batch and exits 0; the record stays, stopped, with its log.
  t.true(await undeployUsecase(o.reconciler.store, null, 'data_quality', 'A'));
  const stopped = await o.waitForJob(jobId, (r) => r.state === 'stopped' && r.retiring.length === 0, 90_000);
  t.is(stopped.current, null);
  t.truthy(stopped.lastLogFile);
  const after = lifecycle(await consumeUntil(kafka, o.options.topics.events, (m) => lifecycle(m).filter((e) => e.event === 'stopped').length >= 2, 30_000));
  t.like(after.filter((e) => e.event === 'stopped')[1], { version: v2.version, exitCode: 0 });

  // The bystander lived through the deploy, the upgrade and the undeploy of the other job.
  await o.produce([6].map((i) => customerRecord(`v2-${i}`, `c${i}`, { amount: -i })));
  const everything = await consumeUntil(kafka, o.options.topics.output, (m) => m.some((x) => x.value!.toString('latin1').includes('v2-6') && x.value!.toString('latin1').includes('bystander')), 120_000);
  const untouched = await o.reconciler.store.getJob(bystanderId);
  t.is(untouched?.current?.groupPid, bystander.current!.groupPid, "the other job's process never changed");
  t.is(untouched?.restarts, 0);
  t.is(untouched?.state, 'running');
  t.deepEqual(await feedbackOf('bystander', everything), ['v1-1', 'v1-2', 'v2-3', 'v2-4', 'v2-5', 'v2-6'], 'its output has no gap');
  t.deepEqual([...new Set(after.filter((e) => e.job === bystanderId).map((e) => e.event))].sort(), ['adopted', 'running', 'starting'], 'the other job: started once, adopted by the restarted orchestrator, nothing else');
});
