/**
 * Faults of the platform's own processes while records stream through the whole diamond:
 * kill -9 of a use case driver, of the feedback writer, and of the orchestrator. In each,
 * feedback_by_customer ends with exactly the expected rows (none missing, none twice) and
 * the jobs the fault did not involve keep their process, never restarted.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertUntouched, e2eDataset, deployExamples, driverPid, jobSnapshot, startDiamond, waitForSent } from '../support/e2e.ts';

test.serial('kill -9 a use case driver mid-stream: it restarts from its checkpoint, the others are untouched', async (t) => {
  const d = await startDiamond(t, 'kill-driver');
  const jobs = await deployExamples(d);
  const others = await jobSnapshot(d, [jobs.quality, jobs.spendingB]);
  const victim = await d.job(jobs.spendingA);
  const stream = d.stream(e2eDataset(), 150);
  await waitForSent(stream, 0.4);
  // Mid-stream for the job too: it has state (open windows) and committed offsets to lose.
  await d.waitForProcessed(jobs.spendingA, 0);
  process.kill(driverPid(victim), 'SIGKILL');

  const restarted = await d.waitForJob(jobs.spendingA, (r) => r.state === 'running' && r.current !== null && r.current.groupPid !== victim.current!.groupPid);
  t.is(restarted.restarts, 1, 'restarted once by the orchestrator');
  t.regex(restarted.lastError ?? '', /killed|exited with code/);
  await d.settle(t, stream, { jobs: Object.values(jobs) });
  await assertUntouched(t, d, others);
});

test.serial('kill -9 the feedback writer mid-stream, start it again: every row once, no job touched', async (t) => {
  const d = await startDiamond(t, 'kill-writer');
  const jobs = await deployExamples(d);
  const all = await jobSnapshot(d, Object.values(jobs));
  const stream = d.stream(e2eDataset(), 150);
  await waitForSent(stream, 0.4);
  await d.waitForWritten(0);
  const killed = d.writerPid();
  await d.killWriter();
  t.is(d.writerExit(), 'SIGKILL');
  // Feedback keeps arriving while no writer runs; the next one starts from the committed offsets.
  await sleep(5_000);
  await d.startWriter();
  t.not(d.writerPid(), killed);
  await d.settle(t, stream, { jobs: Object.values(jobs) });
  await assertUntouched(t, d, all);
});

test.serial('kill -9 the orchestrator mid-stream, start another: it adopts every running job, none restarted', async (t) => {
  const d = await startDiamond(t, 'kill-orchestrator');
  const jobs = await deployExamples(d);
  const all = await jobSnapshot(d, Object.values(jobs));
  const stream = d.stream(e2eDataset(), 150);
  await waitForSent(stream, 0.3);
  await d.killOrchestrator();
  // Unsupervised for a while: jobs keep processing and reporting progress, nobody commits it yet.
  await sleep(5_000);
  await d.startOrchestrator();
  await d.settle(t, stream, { jobs: Object.values(jobs) });
  await assertUntouched(t, d, all, ['adopted', 'running', 'starting']);
  const adopted = (await d.events()).filter((e) => e.event === 'adopted');
  t.deepEqual(adopted.map((e) => e.job).sort(), Object.values(jobs).sort(), 'the new orchestrator adopted each job once');
  for (const event of adopted) t.is(event.pid, all.get(event.job)?.current?.groupPid, `${event.job}: adopted the same process group`);
});
