/**
 * Deploys while records stream through the whole diamond: a third use case deployed hot
 * (a copy of data_quality under another name, from the earliest offsets), and an upgrade of
 * data_quality (a changed folder, a new version that waits warm, then starts at exactly the
 * offsets the old one stopped at).
 * In each, feedback_by_customer ends with exactly the expected rows, and the jobs not
 * deployed keep their process, never restarted.
 */
import test from 'ava';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertUntouched, e2eDataset, deployExamples, jobSnapshot, startDiamond, waitForSent } from '../support/e2e.ts';

test.serial('hot-deploy a third use case mid-stream: it delivers for every record, the running jobs are untouched', async (t) => {
  const d = await startDiamond(t, 'hot-deploy');
  const jobs = await deployExamples(d);
  const all = await jobSnapshot(d, Object.values(jobs));
  const stream = d.stream(e2eDataset(), 150);
  await waitForSent(stream, 0.3);
  const third = d.jobId('quality_copy', 'A');
  await d.deploy('quality_copy', 'A', d.copyUsecase('data_quality', 'quality_copy'));
  await d.waitForJob(third, (r) => r.state === 'running');
  const { delivered } = await d.settle(t, stream, { jobs: [...Object.values(jobs), third], copies: ['quality_copy'] });
  t.true(delivered.some((row) => row.usecase === 'quality_copy'));
  await assertUntouched(t, d, all);
});

test.serial('upgrade data_quality mid-stream at an exact boundary: each record carried by exactly one version, the old stops gracefully, spending_spike untouched', async (t) => {
  const d = await startDiamond(t, 'upgrade');
  const folder = d.copyUsecase('data_quality');
  const jobs = await deployExamples(d, folder);
  const spending = await jobSnapshot(d, [jobs.spendingA, jobs.spendingB]);
  const v1 = await d.job(jobs.quality);
  const dataset = e2eDataset();
  const stream = d.stream(dataset, 150);
  // Records keep coming while the new version validates and starts warm, then the handover;
  // the last 40% wait until the old one is gone, so that only the new version can see them.
  const after = stream.holdAt(0.6);
  await waitForSent(stream, 0.3);
  appendFileSync(join(folder, 'job.py'), '\n# v2: the same checks, a new version\n');
  const v2 = await d.deploy('data_quality', 'A', folder);
  t.not(v2.version, v1.current!.version, 'a changed folder is a new version');
  const upgraded = await d.waitForJob(jobs.quality, (r) => r.state === 'running' && r.current?.version === v2.version && r.retiring.length === 0);
  t.true(stream.sent() > Math.ceil(stream.total * 0.3), 'the upgrade overlapped the stream');
  stream.release();
  t.not(upgraded.current!.groupPid, v1.current!.groupPid);
  t.is(upgraded.restarts, 0, 'an upgrade, not a crash');

  const { delivered } = await d.settle(t, stream, { jobs: Object.values(jobs) });
  const quality = delivered.filter((row) => row.usecase === 'data_quality');
  t.deepEqual([...new Set(quality.map((row) => row.version))].filter((v) => v !== v1.current!.version && v !== v2.version), [], 'only the two versions wrote');
  const late = new Set(dataset.batches.slice(after).flat().map((item) => item.recordId));
  const lateRows = quality.filter((row) => late.has(row.record_ids[0]!));
  t.true(lateRows.length > 0);
  t.deepEqual([...new Set(lateRows.map((row) => row.version))], [v2.version], 'records sent after the old version stopped: feedback from the new one');
  const events = (await d.events()).filter((e) => e.job === jobs.quality);
  const stopped = events.filter((e) => e.event === 'stopped');
  t.deepEqual(stopped.map((e) => [e.version, e.exitCode]), [[v1.current!.version, 0]], 'the old version finished its batch and exited 0');
  const handedOver = events.find((e) => e.event === 'running' && e.version === v2.version);
  t.truthy(handedOver?.offsets, 'the running event of the new version names the boundary it started at');
  t.log(`handover at ${JSON.stringify(handedOver?.offsets)}: paused ${handedOver?.pauseMs} ms from the old version's stop request to the new query's start, ${handedOver?.drainMs} ms of it until the old one's last batch was committed`);
  // The exact boundary, read from the topic itself (the sinks' upserts would hide an overlap):
  // per input record, the versions whose data_quality output carries it — exactly one each.
  const versionsByRecord = new Map<string, Set<string>>();
  for (const feedback of await d.feedbackMessages()) {
    if (feedback.usecase !== 'data_quality') continue;
    for (const id of feedback.record_ids) versionsByRecord.set(id, (versionsByRecord.get(id) ?? new Set()).add(feedback.version));
  }
  const both = [...versionsByRecord].filter(([, versions]) => versions.size !== 1).map(([id]) => id);
  t.true(versionsByRecord.size > 0);
  t.deepEqual(both, [], `records carried by both versions (of ${versionsByRecord.size})`);
  const byVersion = [v1.current!.version, v2.version].map((v) => [...versionsByRecord.values()].filter((versions) => versions.has(v)).length);
  t.true(byVersion.every((n) => n > 0), `both versions carried records (v1 ${byVersion[0]}, v2 ${byVersion[1]})`);
  await assertUntouched(t, d, spending);
});
