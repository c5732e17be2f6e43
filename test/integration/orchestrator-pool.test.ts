/**
 * The warm driver pool with real Spark, Kafka and Redis. Pool size 1: the orchestrator
 * starts a spare; a deploy takes it (its `starting` event says warm), the feedback arrives,
 * and the pool refills with a new spare while the taken one is now the job's launch (same
 * process group); kill -9 of the job's process group → the restart takes the new spare, one
 * process tree per job in /proc, every record's feedback exactly once. Pool off: the same
 * steps start cold and still work. Deploy → first feedback and kill -9 → processing again
 * are printed (t.log), never asserted on. The bench's two findings, under a trickle of
 * records: an upgrade of a job a kill -9 restarted on a spare hands over at the boundary,
 * the old version stopping gracefully (its stopped report consumed, exit 0) well within a
 * short stop grace; and a stateful job that takes a spare while another job reports
 * steadily is seen running before a short start timeout. Serial; several Spark starts.
 */
import test, { type ExecutionContext } from 'ava';
import { appendFileSync, cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRegistry } from '../../shared/registry.ts';
import type { Feedback } from '../../shared/schemas.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { JobLauncher } from '../../infra/orchestrator/launcher.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { jobIdFor, launchIdOf, type JobRecord, type SpareProcess } from '../../infra/orchestrator/state.ts';
import { consumeUntil, readToEnd, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();

interface StartEvent { event: string; warm?: boolean; cold?: string; version?: string }
const eventsOf = (values: { value: Buffer | null }[]): StartEvent[] => values.map((m) => JSON.parse(m.value!.toString()) as StartEvent);

async function readySpare(o: TestOrchestrator, except: ReadonlySet<string> = new Set(), timeoutMs = 180_000): Promise<SpareProcess> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ready = (await o.reconciler.store.listSpares()).find((s) => s.readyAt !== null && !except.has(s.spareId));
    if (ready) return ready;
    await sleep(200);
  }
  throw new Error(`no ready spare (besides ${[...except].join(', ') || 'none'}) in ${timeoutMs} ms: ${JSON.stringify(await o.reconciler.store.listSpares())}`);
}

/** The feedback of `recordIds` on the output topic (one message each at least), decoded. */
async function feedbackFor(o: TestOrchestrator, recordIds: readonly string[], timeoutMs = 180_000): Promise<Feedback[]> {
  const registry = createRegistry(o.config);
  const messages = await consumeUntil(kafka, o.options.topics.output, (m) => m.length >= recordIds.length, timeoutMs);
  const decoded = await Promise.all(messages.map(async (m) => (await registry.decode(m.value!)) as Feedback));
  return decoded.filter((f) => f.record_ids.some((id) => recordIds.includes(id)));
}

async function waitForCommitted(o: TestOrchestrator, jobId: string, timeoutMs = 120_000): Promise<void> {
  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
    if (Object.entries(ends).every(([p, end]) => (committed[p] ?? -1) >= end || end === 0)) return;
    await sleep(200);
  }
  throw new Error('the job never committed the end offsets');
}

/** The job's marked processes per launch (the JVM, the Python driver and the shell of each). */
function launchesOf(o: TestOrchestrator, jobId: string): Set<string> {
  const launcher = new JobLauncher(o.config, o.options.topics, { jobs: o.options.jobsDir, checkpoints: o.options.checkpointsDir });
  return new Set(launcher.jobProcesses().filter((p) => p.jobId === jobId).map((p) => p.launchId));
}

async function untilOneLaunch(o: TestOrchestrator, jobId: string, launchId: string, timeoutMs = 60_000): Promise<Set<string>> {
  const deadline = Date.now() + timeoutMs;
  let launches = launchesOf(o, jobId);
  while (Date.now() < deadline && !(launches.size === 1 && launches.has(launchId))) {
    await sleep(200);
    launches = launchesOf(o, jobId);
  }
  return launches;
}

interface Timings { deployToFeedbackMs: number; validationMs: number; killToProcessingMs: number }

/** Deploy data_quality, read its first feedback, kill -9 it, read the next record's feedback; exact rows. */
async function deployKillRestart(t: ExecutionContext, o: TestOrchestrator, checkWarm: (event: StartEvent, when: 'deploy' | 'restart') => void, beforeKill?: () => Promise<void>): Promise<Timings> {
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('r-1', 'c1', { amount: -1 })]);
  const deployedAt = Date.now();
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix, { feedbackSubject: o.options.topics.feedbackSubject! });
  const validationMs = Date.now() - deployedAt;
  const first = await feedbackFor(o, ['r-1']);
  const deployToFeedbackMs = Date.now() - deployedAt;
  t.is(first.length, 1);
  const starting = eventsOf(await consumeUntil(kafka, o.options.topics.events, (m) => eventsOf(m).some((e) => e.event === 'starting'), 30_000)).find((e) => e.event === 'starting')!;
  checkWarm(starting, 'deploy');

  const running = await o.waitForJob(jobId, (r) => r.state === 'running');
  await waitForCommitted(o, jobId);
  await beforeKill?.();
  const killed = running.current!;
  const killedAt = Date.now();
  process.kill(-killed.groupPid, 'SIGKILL');
  await o.produce([customerRecord('r-2', 'c2', { amount: -1 })]);
  const both = await feedbackFor(o, ['r-1', 'r-2']);
  const killToProcessingMs = Date.now() - killedAt;
  const restarted = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current !== null && launchIdOf(r.current) !== launchIdOf(killed));
  const restartEvent = eventsOf(await consumeUntil(kafka, o.options.topics.events, (m) => eventsOf(m).some((e) => e.event === 'restarted'), 30_000)).find((e) => e.event === 'restarted')!;
  checkWarm(restartEvent, 'restart');

  const launches = await untilOneLaunch(o, jobId, launchIdOf(restarted.current!));
  t.deepEqual([...launches], [launchIdOf(restarted.current!)], 'one process tree for the job in /proc: the new launch only');
  await waitForCommitted(o, jobId);
  const registry = createRegistry(o.config);
  const all = await Promise.all((await readToEnd(kafka, o.options.topics.output)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  t.deepEqual(all.map((f) => f.record_ids.join(',')).sort(), ['r-1', 'r-2'], 'every record\'s feedback exactly once');
  t.is(both.length, 2);
  return { deployToFeedbackMs, validationMs, killToProcessingMs };
}

test.serial('pool size 1: a deploy and a kill -9 restart each take a warm spare; the pool refills; one process tree per job; rows exact', async (t) => {
  const o = await startTestOrchestrator('orch-pool', { DIAMOND_POOL_SIZE: '1' });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const startedAt = Date.now();
  const spare = await readySpare(o);
  t.log(`first spare ready ${Date.now() - startedAt} ms after the orchestrator started`);
  let second: SpareProcess | null = null;

  const timings = await deployKillRestart(t, o, (event, when) => {
    t.true(event.warm, `the ${when} took a warm spare (${event.cold ?? ''})`);
  }, async () => {
    // The deploy took the first spare: it is the job's launch now, and the pool refilled.
    const record = await o.reconciler.store.getJob(jobId);
    t.is(record?.current?.launchId, spare.spareId, "the job's launch is the spare it took");
    t.is(record?.current?.groupPid, spare.groupPid, 'same process group');
    const refillFrom = Date.now();
    second = await readySpare(o, new Set([spare.spareId]));
    t.log(`pool refilled (a new spare ready) ${Date.now() - refillFrom} ms after the first feedback and commit`);
    t.not(second.groupPid, spare.groupPid);
  });
  const record = await o.reconciler.store.getJob(jobId);
  t.is(record?.current?.launchId, second!.spareId, 'the restart took the refilled spare');
  t.log(`warm: deploy → first feedback ${timings.deployToFeedbackMs} ms (of which the deploy's validation ${timings.validationMs} ms); kill -9 → processing again ${timings.killToProcessingMs} ms`);
  const spares = await o.reconciler.store.listSpares();
  t.false(spares.some((s) => s.spareId === spare.spareId || s.spareId === second!.spareId), 'a driver that ran a job is never back in the pool');
});

test.serial('a restarted orchestrator adopts the ready spare instead of stopping or duplicating it, and the next deploy takes it', async (t) => {
  const o = await startTestOrchestrator('orch-pool-adopt', { DIAMOND_POOL_SIZE: '1' });
  t.teardown(() => o.teardown());
  const spare = await readySpare(o);
  await o.restartOrchestrator();
  await sleep(3 * 300); // a few ticks of the new orchestrator: an orphan would get SIGTERM now
  const stored = await o.reconciler.store.listSpares();
  t.deepEqual(stored.map((s) => s.spareId), [spare.spareId], 'the same spare, no second one');
  t.true(new JobLauncher(o.config, o.options.topics, { jobs: o.options.jobsDir, checkpoints: o.options.checkpointsDir }).isRunning(spare), 'still alive');
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  await o.produce([customerRecord('r-1', 'c1', { amount: -1 })]);
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix, { feedbackSubject: o.options.topics.feedbackSubject! });
  t.is((await feedbackFor(o, ['r-1'])).length, 1);
  const record = await o.waitForJob(jobId, (r) => r.current !== null);
  t.is(record.current?.launchId, spare.spareId, 'the deploy took the adopted spare');
});

test.serial('an upgrade of a job that a kill -9 restarted on a warm spare hands over at the boundary: the old version stops gracefully', async (t) => {
  // A grace well above what finishing a batch takes, and below what waiting out a backlog of reports did.
  const o = await startTestOrchestrator('orch-pool-up', { DIAMOND_POOL_SIZE: '1', DIAMOND_ORCHESTRATOR_STOP_GRACE: '15s' });
  t.teardown(() => o.teardown());
  const folder = join(mkdtempSync(join(tmpdir(), 'diamond-pool-upgrade-')), 'data_quality');
  cpSync(join(o.config.projectRoot, 'usecases', 'data_quality'), folder, { recursive: true });
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const deploy = () => deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder }, o.options.jobPrefix, { feedbackSubject: o.options.topics.feedbackSubject! });
  await o.produce([customerRecord('r-1', 'c1', { amount: -1 })]);
  const first = await readySpare(o);
  const v1 = await deploy();
  const deployed = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current?.launchId === first.spareId);
  await waitForCommitted(o, jobId);

  // kill -9: the restart takes the refilled spare, and the old version runs there.
  const second = await readySpare(o, new Set([first.spareId]));
  process.kill(-deployed.current!.groupPid, 'SIGKILL');
  await o.produce([customerRecord('r-2', 'c2', { amount: -1 })]);
  const restarted = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current?.launchId === second.spareId);
  await waitForCommitted(o, jobId);
  const third = await readySpare(o, new Set([first.spareId, second.spareId]));

  // The upgrade: the new version waits warm (on the third spare); the old one must stop at its batch boundary.
  // Under a trickle of records (10/s, as the bench's upgrade): the old version has a batch most triggers.
  appendFileSync(join(folder, 'job.py'), '\n# v2: same logic, new version\n');
  const trickled: string[] = [];
  const trickle = setInterval(() => {
    const id = `t-${trickled.length}`;
    trickled.push(id);
    void o.produce([customerRecord(id, `c${trickled.length % 5}`, { amount: -1 })]).catch(() => undefined);
  }, 100);
  let upgraded: JobRecord;
  let v2: Awaited<ReturnType<typeof deploy>>;
  try {
    await sleep(5000); // the old version reports a batch every trigger or so
    v2 = await deploy();
    t.not(v2.version, v1.version);
    upgraded = await o.waitForJob(jobId, (r) => r.state === 'running' && r.current?.version === v2.version && r.retiring.length === 0);
  } finally {
    clearInterval(trickle);
  }
  await o.produce([customerRecord('r-3', 'c3', { amount: -1 })]);
  t.is(upgraded.current?.launchId, third.spareId, 'the new version took the third spare');
  const stoppedReport = await o.reconciler.store.stoppedAt(jobId, v1.version);
  t.log(`old version on ${launchIdOf(restarted.current!)}; log ${restarted.current!.logFile}`);
  t.true(stoppedReport !== null && stoppedReport >= restarted.current!.startedAt, 'the old version\'s stopped report was consumed (it stopped at a boundary, not killed at the grace deadline)');
  interface Lifecycle { event: string; version?: string; exitCode?: number | null; pauseMs?: number }
  const lifecycle = (await consumeUntil(kafka, o.options.topics.events, (m) => m.some((x) => (JSON.parse(x.value!.toString()) as Lifecycle).event === 'stopped'), 30_000)).map((m) => JSON.parse(m.value!.toString()) as Lifecycle);
  t.like(lifecycle.find((e) => e.event === 'stopped'), { version: v1.version, exitCode: 0 }, 'the old version exited 0 (graceful), not killed');
  t.log(`handover pause ${lifecycle.find((e) => e.event === 'running' && e.version === v2.version)?.pauseMs} ms`);
  await waitForCommitted(o, jobId);
  const registry = createRegistry(o.config);
  await sleep(500); // the last trickled sends are in flight
  await waitForCommitted(o, jobId);
  const all = await Promise.all((await readToEnd(kafka, o.options.topics.output)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  t.deepEqual(all.map((f) => f.record_ids.join(',')).sort(), ['r-1', 'r-2', 'r-3', ...trickled].sort(), 'every record\'s feedback exactly once');
});

test.serial('a stateful use case deployed on a spare while another job reports steadily starts and emits its windows', async (t) => {
  // The bench's order: data_quality has reported a batch every trigger under a trickle, then
  // spending_spike takes the refilled spare. Its first report must be seen before the start timeout.
  const o = await startTestOrchestrator('orch-pool-stateful', { DIAMOND_POOL_SIZE: '1', DIAMOND_ORCHESTRATOR_START_TIMEOUT: '60s' });
  t.teardown(() => o.teardown());
  const dq = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const spike = jobIdFor('spending_spike', 'A', o.options.jobPrefix);
  await o.produce([
    customerRecord('s-1', 'acme', { amount: 1500, event_time: Date.UTC(2026, 10, 1, 10, 10) }),
    customerRecord('s-2', 'globex', { amount: 20, event_time: Date.UTC(2026, 10, 1, 10, 12) }),
    // A later event time moves the watermark past the windows above, so they are emitted.
    customerRecord('s-3', 'initech', { amount: 1, event_time: Date.UTC(2026, 10, 1, 13, 0) }),
  ]);
  const first = await readySpare(o);
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix, { feedbackSubject: o.options.topics.feedbackSubject! });
  await o.waitForJob(dq, (r) => r.state === 'running');
  // A trickle (10 records/s; their purchases are negative and, after s-3, behind the watermark) until the pool refilled.
  let n = 0;
  const trickle = setInterval(() => void o.produce([customerRecord(`t-${n++}`, `c${n % 5}`, { amount: -1 })]).catch(() => undefined), 100);
  let spare: SpareProcess;
  try {
    await sleep(20_000);
    spare = await readySpare(o, new Set([first.spareId]));
  } finally {
    clearInterval(trickle);
  }
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'spending_spike', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'spending_spike') }, o.options.jobPrefix, { feedbackSubject: o.options.topics.feedbackSubject! });
  const launched = await o.waitForJob(spike, (r) => r.current !== null);
  t.is(launched.current?.launchId, spare.spareId, 'the deploy took the refilled spare');
  t.log(`the stateful job's log: ${launched.current!.logFile}`);
  const started = await o.waitForJob(spike, (r) => r.state !== 'starting', 240_000);
  t.is(started.state, 'running', `its first report was seen before the start timeout (last error: ${started.lastError ?? 'none'})`);
  t.is(started.restarts, 0);
  const registry = createRegistry(o.config);
  const decoded = await Promise.all((await consumeUntil(kafka, o.options.topics.output, (m) => m.filter((x) => x.value!.toString('latin1').includes('spending_spike')).length >= 2, 180_000)).map(async (m) => (await registry.decode(m.value!)) as Feedback));
  t.deepEqual(decoded.filter((f) => f.usecase === 'spending_spike').map((f) => f.customer_id), ['acme', 'acme'], "acme's two sliding windows above the threshold");
});

test.serial('pool off: deploys and restarts start cold, and still process', async (t) => {
  const o = await startTestOrchestrator('orch-nopool', { DIAMOND_POOL_SIZE: '0' });
  t.teardown(() => o.teardown());
  const timings = await deployKillRestart(t, o, (event, when) => {
    t.false(event.warm, `the ${when} started cold`);
    t.regex(event.cold ?? '', /pool off/);
  });
  t.deepEqual(await o.reconciler.store.listSpares(), [], 'no spare is started');
  t.log(`cold: deploy → first feedback ${timings.deployToFeedbackMs} ms (of which the deploy's validation ${timings.validationMs} ms); kill -9 → processing again ${timings.killToProcessingMs} ms`);
});
