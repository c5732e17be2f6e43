import test from 'ava';
import { dashboardQueries, exposedNames, metricNamesOf, readDashboard } from './dashboard-metrics.ts';

test('metric names of PromQL: functions, grouping labels, matchers, ranges and keywords are not names', (t) => {
  t.deepEqual(metricNamesOf('histogram_quantile(0.99, sum by (le, route) (rate(diamond_ingest_request_duration_seconds_bucket{route="/v1/records"}[5m])))'), ['diamond_ingest_request_duration_seconds_bucket']);
  t.deepEqual(metricNamesOf('sum by (job) (rate(a_sum[5m])) / sum by (job) (rate(a_count[5m]))').sort(), ['a_count', 'a_sum']);
  t.deepEqual(metricNamesOf('max by (job, state) (diamond_job_state == 1) and on (job) up offset 5m'), ['diamond_job_state', 'up']);
  t.deepEqual(metricNamesOf('process_resident_memory_bytes'), ['process_resident_memory_bytes']);
});

test('an exposition serves its samples and, per TYPE, the names of its type (a histogram without samples too)', (t) => {
  const names = exposedNames([
    '# HELP x_seconds A histogram with no sample yet.', '# TYPE x_seconds histogram',
    '# TYPE y_total counter', 'y_total{a="b"} 3', 'z 1',
  ].join('\n'));
  t.deepEqual([...names].sort(), ['x_seconds_bucket', 'x_seconds_count', 'x_seconds_sum', 'y_total', 'z']);
});

test('the dashboard has queries, and each names at least one metric', (t) => {
  const queries = dashboardQueries(readDashboard());
  t.true(queries.length >= 20, `${queries.length} queries`);
  for (const query of queries) t.true(metricNamesOf(query).length > 0, query);
});
