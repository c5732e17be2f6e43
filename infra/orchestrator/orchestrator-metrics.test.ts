import test from 'ava';
import { parseProgressMessage } from '../../shared/messages.ts';
import { metricValue } from '../../shared/metrics/registry.ts';
import { OrchestratorMetrics } from './orchestrator-metrics.ts';
import { partitionLag } from './state.ts';

const progress = (fields: Record<string, unknown>): string => JSON.stringify({
  event: 'progress', job: 'uc.dq.A', usecase: 'dq', variant: 'A', at: '2026-11-01T10:00:00Z', version: 'v1',
  batch_id: 3, start_offsets: {}, end_offsets: { '0': 10 }, rows_in: 40, rows_out: 7, rows_rejected: 1, ...fields,
});

test("a progress report adds its batch: Spark's triggerExecution in seconds, input rows, rows by kind", async (t) => {
  const metrics = new OrchestratorMetrics();
  const parsed = parseProgressMessage(progress({ durations_ms: { triggerExecution: 1500, addBatch: 900 } }));
  if (!parsed.ok) return t.fail(parsed.problem);
  metrics.observeBatch(parsed.message);
  const job = { job: 'uc.dq.A', usecase: 'dq', variant: 'A' };
  t.is(await metricValue(metrics.registry, 'diamond_job_batch_duration_seconds_sum', job), 1.5);
  t.is(await metricValue(metrics.registry, 'diamond_job_batch_rows_sum', job), 40);
  t.is(await metricValue(metrics.registry, 'diamond_job_rows_total', { ...job, kind: 'out' }), 7);
  t.is(await metricValue(metrics.registry, 'diamond_job_rows_total', { ...job, kind: 'rejected' }), 1);
});

test('job state is one series per state, 1 for the current one; an undeployed job disappears', async (t) => {
  const metrics = new OrchestratorMetrics();
  let jobs = [{ job: 'uc.dq.A', usecase: 'dq', variant: 'A', state: 'crash-looping', lagByPartition: { '0': 4 } }];
  let reads = 0;
  metrics.watchJobs(async () => {
    reads += 1;
    return jobs;
  });
  const text = await metrics.registry.metrics();
  t.regex(text, /diamond_job_state\{job="uc.dq.A",usecase="dq",variant="A",state="crash-looping"\} 1\n/);
  t.regex(text, /diamond_job_state\{job="uc.dq.A",usecase="dq",variant="A",state="running"\} 0\n/);
  t.regex(text, /diamond_job_lag_messages\{job="uc.dq.A",partition="0"\} 4\n/);
  t.is(reads, 1, 'one read of Redis and Kafka per scrape, shared by both gauges');
  jobs = [];
  t.notRegex(await metrics.registry.metrics(), /diamond_job_state\{/);
});

test('restarts are counted by reason', async (t) => {
  const metrics = new OrchestratorMetrics();
  metrics.countRestart({ jobId: 'uc.dq.A', usecase: 'dq', variant: 'A' }, 'crash');
  metrics.countRestart({ jobId: 'uc.dq.A', usecase: 'dq', variant: 'A' }, 'crash');
  t.is(await metricValue(metrics.registry, 'diamond_job_restarts_total', { job: 'uc.dq.A', reason: 'crash' }), 2);
  t.is(await metricValue(metrics.registry, 'diamond_job_restarts_total', { job: 'uc.dq.A', reason: 'outage' }), 0);
});

test('lag per partition: after the committed offset, or the whole partition before a first commit', (t) => {
  t.deepEqual(partitionLag({ '0': 7, '1': -1 }, { '0': 10, '1': 5, '2': 0 }), { '0': 3, '1': 5, '2': 0 });
});

test('alerts firing: one series per rule, 0 when none; none at all when the source fails', async (t) => {
  const metrics = new OrchestratorMetrics();
  let fail = false;
  metrics.watchAlerts(async () => {
    if (fail) throw new Error('redis down');
    return { lag: 2, 'batch-p99': 0, 'crash-looping': 1, stalled: 0, 'offsets-expiring': 0 };
  });
  const text = await metrics.registry.metrics();
  t.regex(text, /diamond_alerts_firing\{rule="lag"\} 2\n/);
  t.regex(text, /diamond_alerts_firing\{rule="crash-looping"\} 1\n/);
  t.regex(text, /diamond_alerts_firing\{rule="offsets-expiring"\} 0\n/);
  fail = true;
  t.notRegex(await metrics.registry.metrics(), /diamond_alerts_firing\{/);
});

test('the pool and the active runs: gauges read when scraped; none at all while their source fails', async (t) => {
  const metrics = new OrchestratorMetrics();
  let fail = false;
  metrics.watchPool(async () => {
    if (fail) throw new Error('redis down');
    return { size: 2, ready: 1, starting: 1 };
  });
  metrics.watchActiveRuns(async () => ({ queued: 3, running: 1 }));
  const text = await metrics.registry.metrics();
  t.regex(text, /diamond_driver_pool_size 2\n/);
  t.regex(text, /diamond_driver_pool_spares\{state="ready"\} 1\n/);
  t.regex(text, /diamond_driver_pool_spares\{state="starting"\} 1\n/);
  t.regex(text, /diamond_runs_active\{state="queued"\} 3\n/);
  t.regex(text, /diamond_runs_active\{state="running"\} 1\n/);
  fail = true;
  t.notRegex(await metrics.registry.metrics(), /diamond_driver_pool_spares\{/, 'no false 0 while Redis is down');
});
