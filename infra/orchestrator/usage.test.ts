import test from 'ava';
import { spawn } from 'node:child_process';
import { sampleProcessGroups, usageBetween } from './usage.ts';

test('samples the CPU and memory of a real process group', async (t) => {
  // A busy loop in its own group: its CPU share between two samples is close to one core.
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 5000; while (Date.now() < end) {}'], { detached: true, stdio: 'ignore' });
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } });
  const group = new Set([child.pid!]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const first = sampleProcessGroups(group).get(child.pid!);
  t.truthy(first);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const second = sampleProcessGroups(group).get(child.pid!)!;
  const usage = usageBetween(first, second);
  t.is(usage.processes, 1);
  t.true(usage.memoryMb > 10, `rss ${usage.memoryMb} MiB`);
  t.true((usage.cpu ?? 0) > 0.3, `cpu ${usage.cpu}`);
  t.is(usageBetween(undefined, second).cpu, null);
});
