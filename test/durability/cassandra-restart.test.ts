/**
 * Cassandra restarted while the feedback writer runs: the writer pauses, retries with
 * backoff and resumes; afterwards every row is present exactly once. Restarts the shared
 * node, so it runs alone (ava.durability.config.js).
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { FeedbackWriter } from '../../downstream/feedback-writer.ts';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { createLogger } from '../../shared/logger.ts';
import { config } from '../support/env.ts';
import { downstreamFixture, feedback } from '../support/downstream.ts';

test('the feedback writer survives a Cassandra restart without losing or duplicating a row', async (t) => {
  const f = await downstreamFixture(t, 'cassandra-restart');
  const writer = new FeedbackWriter({
    kafka: f.kafka, registry: f.registry, cassandra: f.cassandra, rollouts: f.rollouts, logger: f.logger,
    keyspace: f.keyspace, topic: f.topic, rejectedTopic: f.rejectedTopic, groupId: f.groupId,
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

  await sleep(3_000);
  const [down] = await servicesDown(config, { only: ['cassandra'] });
  t.true(down?.stopped, 'the node this checkout started was stopped');
  await sleep(5_000);
  await servicesUp(config, createLogger({ logLevel: 'silent' }), { only: ['cassandra'] });
  await sleep(3_000);
  producing = false;
  await producer;

  await f.waitForCommitted(180_000);
  t.true(produced > 500);
  t.is(await f.count('feedback_by_variant'), produced, 'every feedback written once');
  t.is(await f.count('feedback_by_customer'), produced, 'one variant: every row reaches the customer table');
});
