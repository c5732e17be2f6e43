/**
 * Kafka stopped for three minutes while records stream through the whole diamond ([3/9]
 * "an outage is not a crash"): ingest refuses and the client retries, every job sees the
 * outage (it exits with the outage code and is restarted with backoff, or waits), none is
 * counted as crashing or ends crash-looping, and once the broker is back every job runs
 * again without a redeploy, lag 0, with exactly the oracle's rows. Restarts the shared
 * broker, so it runs among the last files (ava.e2e.config.js), under the Spark lock.
 *
 * Depends on a time window: the outage lasts OUTAGE_MS; the rest is bounded by the settle
 * timeout and the e2e file timeout (15 min), and fails naming what did not happen.
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import type { JobRecord } from '../../infra/orchestrator/state.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { createLogger } from '../../shared/logger.ts';
import { deployExamples, e2eDataset, startDiamond, waitForSent } from '../support/e2e.ts';
import { config } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });
const OUTAGE_MS = 180_000;

test.serial('Kafka stopped for 3 minutes mid-stream: no job crash-loops, all run again without a redeploy, lag 0, every expected row once', async (t) => {
  t.teardown(() => servicesUp(config, logger, { only: ['kafka'] }).then(() => undefined)); // even when the test failed half-way
  const d = await startDiamond(t, 'kafka-outage');
  const jobs = await deployExamples(d);
  const ids = Object.values(jobs);
  const deployed = new Map(await Promise.all(ids.map(async (id) => [id, (await d.job(id)).current?.version ?? null] as const)));
  // Requests go unacknowledged for the whole outage: the stream's stall bound covers it, plus a minute.
  const stream = d.stream(e2eDataset(), 150, { stallMs: OUTAGE_MS + 60_000 });
  // Held at 60 % until the broker is down, so the rest of the stream meets the outage.
  stream.holdAt(0.6);
  await waitForSent(stream, 0.3);
  for (const id of ids) await d.waitForProcessed(id, 0);

  // In flight when the broker stops: the stream is still sending and every job has input it has not committed.
  const ends = await topicEndOffsets(d.admin, d.options.topics.input);
  const atFault = new Map(await Promise.all(ids.map(async (id) => [id, await readJobOffsets(d.admin, id, d.options.topics.input)] as const)));
  t.true(stream.sent() < stream.total, `the stream was still sending (${stream.sent()} of ${stream.total} requests)`);
  const endTotal = Object.values(ends).reduce((a, b) => a + b, 0);
  const behind = [...atFault].filter(([id, committed]) => {
    const done = Object.values(committed).filter((o) => o > 0).reduce((a, b) => a + b, 0);
    t.log(`${id}: committed ${done} of ${endTotal} when Kafka stopped`);
    return done < endTotal;
  });
  t.true(behind.length > 0, 'at least one job had input it had not committed when Kafka stopped');

  const [down] = await servicesDown(config, { only: ['kafka'] });
  t.true(down?.stopped, 'the broker this checkout started was stopped');
  const stoppedAt = Date.now();
  const sentBefore = stream.sent();
  stream.release();
  // During the outage the jobs' records show it (the records live in Redis, which stays up).
  const seen = new Map<string, JobRecord>();
  while (Date.now() - stoppedAt < OUTAGE_MS) {
    for (const id of ids) {
      const record = await d.job(id);
      if ((record.outages ?? 0) > 0 || /^outage/.test(record.lastError ?? '')) seen.set(id, record);
      t.not(record.state, 'crash-looping', `${id} is not crash-looping during the outage`);
    }
    await sleep(2_000);
  }
  const sentDuring = stream.sent() - sentBefore;
  await servicesUp(config, logger, { only: ['kafka'] });
  t.log(`Kafka was down ${Math.round((Date.now() - stoppedAt) / 1000)} s; ${sentDuring} requests were acknowledged meanwhile; outages seen for ${[...seen.keys()].join(', ') || 'no job'}`);
  t.is(sentDuring, 0, 'ingest acknowledged nothing while Kafka was down (it refused, the client retried)');
  // A job may exit with the outage code (restarted with backoff) or simply wait inside Spark's
  // Kafka client until the broker is back: both are fine, so this is reported, not asserted.
  t.log(`jobs that exited for the outage: ${seen.size}`);

  await d.settle(t, stream, { jobs: ids, duplicatesAllowed: true, timeoutMs: 420_000 });
  const events = await d.events();
  for (const id of ids) {
    const record = await d.job(id);
    t.is(record.state, 'running', `${id} running again`);
    t.deepEqual(record.crashes, [], `${id}: the outage counted as no crash`);
    t.is(record.current?.version ?? null, deployed.get(id) ?? null, `${id}: the same version, no redeploy`);
    const names = events.filter((e) => e.job === id).map((e) => e.event);
    t.false(names.includes('crash-looping'), `${id}: never crash-looping (${[...new Set(names)].join(', ')})`);
    t.log(`${id}: ${record.restarts} restarts, ${names.filter((n) => n === 'outage').length} outage events`);
  }
  t.false(events.some((e) => e.event === 'deployed' && Date.parse(e.at) > stoppedAt), 'nothing was redeployed');
  t.is(d.writerExit(), null, 'the writer rode out the outage');
});
