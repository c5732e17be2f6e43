import test from 'ava';
import { buildLifecycleEvent } from '../../shared/messages.ts';
import { formatEventLine } from './events-command.ts';

const at = new Date(Date.UTC(2026, 10, 1, 10));

test('an event line shows the error; an alert shows its rule, severity and summary instead', (t) => {
  const failed = buildLifecycleEvent('failed', { job: 'uc.dq.A', usecase: 'dq', variant: 'A', version: 'v1', exitCode: 2, error: 'exited with code 2' }, at);
  t.is(formatEventLine(failed), '2026-11-01T10:00:00.000Z  uc.dq.A                   failed         v1  exited with code 2');
  const alert = buildLifecycleEvent('alert-firing', { job: 'uc.dq.A', usecase: 'dq', variant: 'A', rule: 'lag', severity: 'warning', summary: 'uc.dq.A: lag 250 records (threshold 100)', value: 250, threshold: 100, unit: 'records' }, at);
  t.is(formatEventLine(alert), '2026-11-01T10:00:00.000Z  uc.dq.A                   alert-firing   -  lag (warning): uc.dq.A: lag 250 records (threshold 100)');
});
