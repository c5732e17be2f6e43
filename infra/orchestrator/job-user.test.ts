import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../shared/config.ts';
import { restrictPlatformHome } from './job-user.ts';

const mode = (path: string): number => statSync(path).mode & 0o7777;

test('the platform home is closed around the job folders: crossable on the way, every other entry private', (t) => {
  const home = mkdtempSync(join(tmpdir(), 'diamond-job-user-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const jobs = join(home, 'orchestrator', 'jobs');
  const checkpoints = join(home, 'orchestrator', 'checkpoints');
  mkdirSync(jobs, { recursive: true, mode: 0o755 });
  mkdirSync(checkpoints, { recursive: true, mode: 0o755 });
  mkdirSync(join(home, 'orchestrator', 'validated'), { mode: 0o755 });
  mkdirSync(join(home, 'data', 'redis'), { recursive: true, mode: 0o755 });
  writeFileSync(join(home, 'local.json'), '{}', { mode: 0o644 });
  writeFileSync(join(home, 'redis.password'), 'x', { mode: 0o600 });
  mkdirSync(join(jobs, 'uc.a.A'), { mode: 0o700 });
  const eventLogs = join(home, 'spark-events');
  mkdirSync(eventLogs);
  chmodSync(eventLogs, 0o1777);

  restrictPlatformHome(home, [jobs, checkpoints, eventLogs]);

  t.is(mode(home), 0o711, 'the home: crossable, not listable');
  t.is(mode(join(home, 'orchestrator')), 0o711);
  t.is(mode(jobs), 0o711);
  t.is(mode(checkpoints), 0o711);
  t.is(mode(join(home, 'local.json')), 0o600, 'a world-readable file in the home is made private');
  t.is(mode(join(home, 'redis.password')), 0o600);
  t.is(mode(join(home, 'data')), 0o700);
  t.is(mode(join(home, 'orchestrator', 'validated')), 0o700);
  t.is(mode(join(jobs, 'uc.a.A')), 0o700, 'the jobs\' own folders are left as they are');
  t.is(mode(eventLogs), 0o1777, 'a sticky drop box (the Spark event logs) stays one');
});

test('job folders outside the home: the home is closed entirely', (t) => {
  const home = mkdtempSync(join(tmpdir(), 'diamond-job-user-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  mkdirSync(join(home, 'orchestrator'), { mode: 0o755 });
  restrictPlatformHome(home, [join(tmpdir(), 'elsewhere', 'jobs')]);
  t.is(mode(home), 0o711);
  t.is(mode(join(home, 'orchestrator')), 0o700);
});

test('DIAMOND_JOB_USER names an unprivileged user', (t) => {
  t.is(loadConfig({}).usecases.jobUser, 'diamond-job');
  t.throws(() => loadConfig({ DIAMOND_JOB_USER: 'root' }), { message: /DIAMOND_JOB_USER is "root"/ });
  t.throws(() => loadConfig({ DIAMOND_JOB_USER: 'no spaces' }), { message: /DIAMOND_JOB_USER/ });
});
