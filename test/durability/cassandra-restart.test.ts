/**
 * Cassandra restarted while the feedback writer runs: the writer pauses, retries with
 * backoff and resumes; afterwards every row is present exactly once. Restarts the node of the
 * services it runs against (your own, see OPERATING.md), so it runs alone (ava.durability.config.js).
 *
 * The restart must hit rows in flight (fewer written than sent when the node stops) and must
 * have an effect the writer saw (its retry counter grew), or "every row once" proves nothing.
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { FeedbackWriter } from '../../downstream/feedback-writer.ts';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { Metrics } from '../../shared/http/prometheus.ts';
import { createLogger } from '../../shared/logger.ts';
import { config } from '../support/env.ts';
import { downstreamFixture, feedback } from '../support/downstream.ts';

const RETRIES = 'diamond_feedback_batch_retries_total';

test('the feedback writer survives a Cassandra restart without losing or duplicating a row', async (t) => {
  const f = await downstreamFixture(t, 'cassandra-restart');
  const metrics = new Metrics();
  const writer = new FeedbackWriter({
    kafka: f.kafka, registry: f.registry, cassandra: f.cassandra, rollouts: f.rollouts, logger: f.logger,
    keyspace: f.keyspace, topic: f.topic, rejectedTopic: f.rejectedTopic, groupId: f.groupId, metrics,
  });
  t.teardown(() => writer.stop());
  await writer.start();

  let produced = 0;
  let producing = true;
  const producer = (async () => {
    while (producing) {
      await f.produce(Array.from({ length: 50 }, (_, i) => feedback({ customer_id: `c${(produced + i) % 40}` })));
      produced += 50;
      await sleep(100);
    }
  })();
  producer.catch(() => undefined); // awaited below; the producer's own failure is reported there

  await sleep(3_000);
  // A burst the writer cannot have written yet: the node stops with rows on their way.
  await f.produce(Array.from({ length: 2000 }, (_, i) => feedback({ customer_id: `burst${i % 40}` })));
  produced += 2000;
  const [writtenAtFault, sentAtFault, retriesBefore] = [await f.count('feedback_by_variant'), produced, metrics.get(RETRIES)];
  t.log(`stopping Cassandra with ${writtenAtFault} of ${sentAtFault} rows written, ${retriesBefore} retries so far`);
  t.true(writtenAtFault < sentAtFault, `in flight: ${writtenAtFault} rows written of ${sentAtFault} sent when the node stopped`);
  const [down] = await servicesDown(config, { only: ['cassandra'] });
  t.true(down?.stopped, 'the node this checkout started was stopped');
  await sleep(5_000);
  await servicesUp(config, createLogger({ logLevel: 'silent' }), { only: ['cassandra'] });
  await sleep(3_000);
  producing = false;
  await producer;

  await f.waitForCommitted(180_000);
  t.true(metrics.get(RETRIES) > retriesBefore, `the writer retried while the node was down (${retriesBefore} → ${metrics.get(RETRIES)} batch retries)`);
  t.true(produced > 2500);
  t.is(await f.count('feedback_by_variant'), produced, 'every feedback written once');
  t.is(await f.count('feedback_by_customer'), produced, 'one variant: every row reaches the customer table');
});
