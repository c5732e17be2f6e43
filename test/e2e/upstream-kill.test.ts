/**
 * kill -9 of the ingest process under `diamond up`'s supervisor while records stream in: the
 * kill hits requests in flight (the stream is sending, and requests are refused while no
 * process listens), the supervisor starts a new `diamond serve upstream`, the clients' retries
 * land, and the end state is exact: every accepted record landed (a record lands twice only
 * when its request was refused and sent again), and every expected feedback row once.
 * How long the ingest API was gone is reported, not asserted (no timed assertions).
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertSending, deployExamples, e2eDataset, midStream, startDiamond } from '../support/e2e.ts';

test.serial('kill -9 upstream under the supervisor mid-stream: a new one serves, every accepted record lands, exact rows', async (t) => {
  const d = await startDiamond(t, 'kill-upstream', { upstream: 'supervised' });
  const jobs = await deployExamples(d);
  const stream = d.stream(e2eDataset(), 150);
  await midStream(stream, () => d.waitForProcessed(jobs.quality, 0));
  assertSending(t, stream);
  const victim = d.upstreamPid();
  if (victim === null) throw new Error('no supervised upstream process before the kill');
  const resentBefore = stream.resent().size;
  const killedAt = Date.now();
  process.kill(victim, 'SIGKILL');

  // The supervisor's restart: a different pid, serving (its pid file is written at spawn).
  let replacement: number | null = null;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    replacement = d.upstreamPid();
    if (replacement !== null && replacement !== victim && stream.resent().size > resentBefore) break;
    await sleep(100);
  }
  t.not(replacement, null, 'the supervisor started a new upstream process');
  t.not(replacement, victim, 'a new process, not the killed one');
  t.true(stream.resent().size > resentBefore, `the kill hit the stream: requests were refused and sent again (${stream.resent().size - resentBefore} records resent since the kill)`);
  const startedAfter = Date.now() - killedAt;
  const sentThen = stream.sent();
  while (stream.sent() === sentThen && stream.sending()) await sleep(100);
  t.log(`upstream pid ${victim} killed; pid ${replacement} started ${startedAfter} ms later; the stream's next request was accepted ${Date.now() - killedAt} ms after the kill`);

  await d.settle(t, stream, { jobs: Object.values(jobs), duplicatesAllowed: true });
});
