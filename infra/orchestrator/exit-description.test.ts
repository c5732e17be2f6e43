import test from 'ava';
import { describeJobEnd } from './exit-description.ts';

const seenAt = Date.UTC(2026, 11, 2, 8, 0, 0);

test('a signal is named with the time it was seen, not a log tail', (t) => {
  const text = describeJobEnd({ exitCode: 137, groupPid: 42, cause: 'WARN some log line', seenAt });
  t.is(text, "killed by SIGKILL (exit code 137), seen at 2026-12-02T08:00:00.000Z — by the kernel's OOM killer or a kill -9");
  t.regex(describeJobEnd({ exitCode: 143, groupPid: 42, cause: '', seenAt }), /^killed by SIGTERM \(exit code 143\)/);
});

test('no exit status: the group is named as killed; an exit code keeps what the job reported', (t) => {
  t.regex(describeJobEnd({ exitCode: null, groupPid: 42, cause: 'WARN x', seenAt }), /^killed: process group 42 is gone without an exit status .* seen at 2026-12-02T08:00:00\.000Z$/);
  t.is(describeJobEnd({ exitCode: 2, groupPid: 42, cause: 'ZeroDivisionError (job.py:12)', seenAt }), 'exited with code 2: ZeroDivisionError (job.py:12)');
});
