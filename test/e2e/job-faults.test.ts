/**
 * Faults of the platform's own processes while records stream through the whole diamond:
 * kill -9 of a use case driver, of the feedback writer, and of the orchestrator. Each fault is
 * shown to hit data in flight (the stream still sending, the victim's committed offsets below
 * its topic's end), then its effect is observed (a restart, a new writer, adoptions), then the
 * exact end state: feedback_by_customer holds exactly the expected rows (none missing, none
 * twice), and the feedback topic itself repeats at most the one batch a restarted job re-ran —
 * the sinks upsert by feedback_id, so only the topic tells a resumed job from one that started over.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertReprocessing, assertSending, assertUntouched, e2eDataset, deployExamples, driverPid, jobSnapshot, midStream, startDiamond } from '../support/e2e.ts';
import { sumOffsets } from '../support/env.ts';
import { assertResumedFrom, inFlight, progressRuns } from '../support/resume.ts';

test.serial('kill -9 a use case driver mid-stream: it resumes from its committed position, the others are untouched', async (t) => {
  const d = await startDiamond(t, 'kill-driver');
  const jobs = await deployExamples(d);
  const others = await jobSnapshot(d, [jobs.quality, jobs.spendingB]);
  const victim = await d.job(jobs.spendingA);
  const stream = d.stream(e2eDataset(), 150);
  await midStream(stream, () => d.waitForProcessed(jobs.spendingA, 0));
  // In flight for the job too: committed offsets (and open windows) to lose, unread input after them.
  const atKill = await inFlight(t, d.admin, jobs.spendingA, d.options.topics.input);
  assertSending(t, stream);
  process.kill(driverPid(victim), 'SIGKILL');

  const restarted = await d.waitForJob(jobs.spendingA, (r) => r.state === 'running' && r.current !== null && r.current.groupPid !== victim.current!.groupPid);
  t.is(restarted.restarts, 1, 'restarted once by the orchestrator');
  t.regex(restarted.lastError ?? '', /killed|exited with code/);
  t.deepEqual((await d.events()).filter((e) => e.job === jobs.spendingA && e.event === 'restarted').length, 1, 'one restarted event for the victim');
  await d.settle(t, stream, { jobs: Object.values(jobs) });
  await assertUntouched(t, d, others);

  const runs = await progressRuns(d.kafka, d.options.topics.progress, jobs.spendingA);
  t.is(runs.length, 2, 'two runs of the victim: before and after the kill');
  assertResumedFrom(t, runs.at(-1)!, atKill.committed);
  assertReprocessing(t, await d.feedbackOnTopic(), new Map([[jobs.spendingA, runs.at(-1)!]]), [jobs.quality, jobs.spendingB]);
});

test.serial('kill -9 the feedback writer mid-stream, start it again: every row once, no job touched', async (t) => {
  const d = await startDiamond(t, 'kill-writer');
  const jobs = await deployExamples(d);
  const all = await jobSnapshot(d, Object.values(jobs));
  const stream = d.stream(e2eDataset(), 150);
  await midStream(stream, () => d.waitForWritten(0));
  assertSending(t, stream);
  const killed = d.writerPid();
  // The writer keeps up with the sparse feedback (a kill at a random moment found it caught up),
  // so it is frozen first until feedback it has not written arrives, then killed: the kill -9
  // lands with input unread (and perhaps a batch half-written).
  process.kill(killed!, 'SIGSTOP');
  await d.waitForWriterBehind();
  await d.killWriter();
  t.is(d.writerExit(), 'SIGKILL');
  // Read once the process is gone: what it wrote and committed is all it will ever have.
  const [writtenAtKill, atKill] = [await d.rowsWritten(), await d.writerOffsets()];
  t.true(sumOffsets(atKill.committed) < sumOffsets(atKill.ends), `in flight: the writer committed ${JSON.stringify(atKill.committed)}, below the feedback topic's end ${JSON.stringify(atKill.ends)}`);
  t.true(writtenAtKill < sumOffsets(atKill.ends), `in flight: ${writtenAtKill} rows written of ${sumOffsets(atKill.ends)} feedback sent when the writer died`);
  // Feedback keeps arriving while no writer runs; the next one starts from the committed offsets.
  await sleep(5_000);
  await d.startWriter();
  t.not(d.writerPid(), killed);
  await d.settle(t, stream, { jobs: Object.values(jobs) });
  await assertUntouched(t, d, all);
  assertReprocessing(t, await d.feedbackOnTopic(), new Map(), Object.values(jobs));
});

test.serial('kill -9 the orchestrator mid-stream, start another: it adopts every running job, none restarted', async (t) => {
  const d = await startDiamond(t, 'kill-orchestrator');
  const jobs = await deployExamples(d);
  const all = await jobSnapshot(d, Object.values(jobs));
  const stream = d.stream(e2eDataset(), 150);
  await midStream(stream, async () => {
    for (const id of Object.values(jobs)) await d.waitForProcessed(id, 0);
  });
  for (const id of Object.values(jobs)) await inFlight(t, d.admin, id, d.options.topics.input);
  assertSending(t, stream);
  await d.killOrchestrator();
  // Unsupervised for a while: jobs keep processing and reporting progress, nobody commits it yet.
  await sleep(5_000);
  await d.startOrchestrator();
  await d.settle(t, stream, { jobs: Object.values(jobs) });
  await assertUntouched(t, d, all, ['adopted', 'running', 'starting']);
  const adopted = (await d.events()).filter((e) => e.event === 'adopted');
  t.deepEqual(adopted.map((e) => e.job).sort(), Object.values(jobs).sort(), 'the new orchestrator adopted each job once');
  for (const event of adopted) t.is(event.pid, all.get(event.job)?.current?.groupPid, `${event.job}: adopted the same process group`);
  assertReprocessing(t, await d.feedbackOnTopic(), new Map(), Object.values(jobs));
});
