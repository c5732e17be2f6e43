/**
 * Alerts for real: an orchestrator on the real Kafka, Redis and Spark, with a webhook
 * receiver (node:http) in this test. A use case that crashes on its first batch with data
 * ends crash-looping with a record waiting: `crash-looping` and `lag` fire, once each, on
 * diamond.events and as webhook POSTs. A redeploy of the fixed code processes the record:
 * both resolve, once each, on both paths (an orchestrator restart in between sends nothing
 * again), and diamond_alerts_firing goes back to 0. Serial.
 */
import test from 'ava';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { parseAlertWebhook } from '../../shared/messages.ts';
import type { WebhookPayload } from '../../infra/orchestrator/webhook-notifier.ts';
import { parseLifecycleEvent, type LifecycleEventMessage } from '../../shared/messages.ts';
import { metricValue } from '../../shared/metrics/registry.ts';
import { consumeUntil, readToEnd, testKafka, type ConsumedMessage } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();

const FIXED_TRANSFORM = `from pyspark.sql import functions as F


def transform(records, ctx):
    return records.select(
        "customer_id", "event_time", F.lit("fixed").alias("kind"), F.lit("info").alias("severity"),
        F.concat(F.lit("fixed: "), "record_id").alias("message"), F.array("record_id").alias("record_ids"),
    )
`;

interface Received {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: WebhookPayload;
}

/** A webhook receiver on a free port: records every POST; the first one answers 503, so delivery must retry. */
async function startReceiver(): Promise<{ url: string; received: Received[]; attempts: () => number; close: () => Promise<void> }> {
  const received: Received[] = [];
  let attempts = 0;
  const read = async (request: IncomingMessage): Promise<string> => {
    let text = '';
    for await (const chunk of request) text += (chunk as Buffer).toString();
    return text;
  };
  const server = createServer((request, response) => {
    void read(request).then((text) => {
      attempts += 1;
      if (attempts === 1) {
        response.writeHead(503).end('not yet');
        return;
      }
      received.push({ path: request.url ?? '', contentType: request.headers['content-type'], body: JSON.parse(text) as WebhookPayload });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/alerts?token=s3cret`, received, attempts: () => attempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const alertsOf = (messages: ConsumedMessage[]): LifecycleEventMessage[] => messages.flatMap((m) => {
  const parsed = parseLifecycleEvent(m.value!.toString());
  if (!parsed.ok) throw new Error(`an event breaks the contract: ${parsed.field} ${parsed.problem}`);
  return parsed.message.event === 'alert-firing' || parsed.message.event === 'alert-resolved' ? [parsed.message] : [];
});
const count = (alerts: readonly LifecycleEventMessage[], event: string, rule: string): number => alerts.filter((a) => a.event === event && a.rule === rule).length;

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test.serial('a crash-looping job with a record waiting fires crash-looping and lag on diamond.events and the webhook; the fixed redeploy resolves both, once each', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const o = await startTestOrchestrator('orch-alerts', {
    DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '2', DIAMOND_ORCHESTRATOR_CRASH_WINDOW: '10m',
    DIAMOND_ALERT_INTERVAL: '500ms', DIAMOND_ALERT_LAG_RECORDS: '0', DIAMOND_ALERT_LAG_FOR: '2s', DIAMOND_ALERT_CRASH_LOOPING_FOR: '0s',
    DIAMOND_ALERT_WEBHOOKS: receiver.url, DIAMOND_ALERT_WEBHOOK_TIMEOUT: '2s', DIAMOND_ALERT_WEBHOOK_RETRIES: '3',
  });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('crashing', 'A', o.options.jobPrefix);
  const folder = join(mkdtempSync(join(tmpdir(), 'diamond-alerts-')), 'crashing');
  cpSync(join(o.config.projectRoot, 'test', 'integration', 'fixtures', 'usecases', 'crashing'), folder, { recursive: true });
  await o.produce([customerRecord('r-1', 'acme')]);
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'crashing', variant: 'A', folder }, o.options.jobPrefix);

  await o.waitForJob(jobId, (r) => r.state === 'crash-looping', 240_000);
  const fired = alertsOf(await consumeUntil(kafka, o.options.topics.events, (m) => {
    const alerts = alertsOf(m);
    return count(alerts, 'alert-firing', 'crash-looping') >= 1 && count(alerts, 'alert-firing', 'lag') >= 1;
  }, 30_000));
  const crashLooping = fired.find((a) => a.event === 'alert-firing' && a.rule === 'crash-looping');
  t.like(crashLooping, { job: jobId, usecase: 'crashing', variant: 'A', severity: 'critical', value: 2, threshold: 2, unit: 'crashes' });
  t.regex(crashLooping?.summary ?? '', /crash-looping after 2 crashes/);
  t.like(fired.find((a) => a.event === 'alert-firing' && a.rule === 'lag'), { job: jobId, severity: 'warning', value: 1, threshold: 0, unit: 'records' });

  // The webhook got both, despite answering the first delivery 503 (retried with backoff).
  await until('both firing alerts at the webhook', () => receiver.received.filter((r) => r.body.state === 'firing').length >= 2, 30_000);
  t.true(receiver.attempts() > receiver.received.length, 'the refused delivery was retried');
  const hook = receiver.received.find((r) => r.body.alert === 'crash-looping');
  t.is(hook?.path, '/hooks/alerts?token=s3cret');
  t.is(hook?.contentType, 'application/json');
  t.like(hook?.body, { alert: 'crash-looping', state: 'firing', severity: 'critical', job: jobId, usecase: 'crashing', variant: 'A', value: 2, threshold: 2, unit: 'crashes' });
  t.false(Number.isNaN(Date.parse(hook?.body.at ?? '')));
  t.like(receiver.received.find((r) => r.body.alert === 'lag')?.body, { state: 'firing', value: 1, threshold: 0 });
  t.is(await metricValue(o.reconciler.metrics.registry, 'diamond_alerts_firing', { rule: 'crash-looping' }), 1);
  t.is(await metricValue(o.reconciler.metrics.registry, 'diamond_alerts_firing', { rule: 'lag' }), 1);

  // A new orchestrator reads the statuses from Redis: the alerts still fire, and are not sent again.
  await o.restartOrchestrator();
  await until('a few evaluations by the new orchestrator', async () => (await metricValue(o.reconciler.metrics.registry, 'diamond_alerts_firing', { rule: 'crash-looping' })) === 1, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 2000));

  // Fixed and redeployed: the record is processed, the group commits, the job runs.
  writeFileSync(join(folder, 'job.py'), FIXED_TRANSFORM);
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'crashing', variant: 'A', folder }, o.options.jobPrefix);
  const all = alertsOf(await consumeUntil(kafka, o.options.topics.events, (m) => {
    const alerts = alertsOf(m);
    return count(alerts, 'alert-resolved', 'crash-looping') >= 1 && count(alerts, 'alert-resolved', 'lag') >= 1;
  }, 240_000));
  const lagResolved = all.find((a) => a.event === 'alert-resolved' && a.rule === 'lag');
  t.like(lagResolved, { job: jobId, severity: 'warning', value: 0, threshold: 0, unit: 'records' });
  t.true(Date.parse(lagResolved?.firingSince ?? '') <= Date.parse(lagResolved?.at ?? ''), 'the resolved event says since when it fired');
  t.regex(all.find((a) => a.event === 'alert-resolved' && a.rule === 'crash-looping')?.summary ?? '', /no longer crash-looping/);
  await until('both resolved alerts at the webhook', () => receiver.received.filter((r) => r.body.state === 'resolved').length >= 2, 30_000);
  t.like(receiver.received.find((r) => r.body.state === 'resolved' && r.body.alert === 'lag')?.body, { job: jobId, value: 0 });
  t.is(await metricValue(o.reconciler.metrics.registry, 'diamond_alerts_firing', { rule: 'crash-looping' }), 0);
  t.is(await metricValue(o.reconciler.metrics.registry, 'diamond_alerts_firing', { rule: 'lag' }), 0);

  // Once each: a few more evaluations change nothing.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const settled = alertsOf(await readToEnd(kafka, o.options.topics.events));
  for (const rule of ['crash-looping', 'lag']) {
    t.is(count(settled, 'alert-firing', rule), 1, `${rule} fired once`);
    t.is(count(settled, 'alert-resolved', rule), 1, `${rule} resolved once`);
  }
  t.deepEqual(settled.map((a) => a.rule).filter((rule) => rule !== 'crash-looping' && rule !== 'lag'), [], 'no other rule fired');
  t.is(receiver.received.length, 4, 'four deliveries: two firing, two resolved');
  // What a receiver got is what shared/schemas/alert-webhook.schema.json promises it.
  for (const { body } of receiver.received) {
    const parsed = parseAlertWebhook(body);
    t.true(parsed.ok, parsed.ok ? '' : `${JSON.stringify(body)}: ${parsed.field} ${parsed.problem}`);
  }
});
