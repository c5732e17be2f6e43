/**
 * Tenant code gets least privilege, with real Kafka, Redis and Spark: a running job's driver
 * environment holds none of the orchestrator's secrets, and a malicious use case (fixture
 * `prying`) that looks for the token and the Redis URL, and forges progress for another job
 * (unsigned and self-signed, a huge end offset, a fake version and a fake failure), gets nothing:
 * the victim's committed offsets stay within its partitions and none of the forged reports is
 * recorded. The fixture logs each attempt and its outcome; the test checks they happened.
 * Two Spark jobs; serial.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { jobIdFor, type JobProcess } from '../../infra/orchestrator/state.ts';
import { consumeAll, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

const kafka = testKafka();
const fixture = join(import.meta.dirname, 'fixtures', 'usecases', 'prying');

async function waitFor<T>(what: string, probe: () => T | null | Promise<T | null>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== null) return value;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

function driverPid(job: JobProcess): number | null {
  if (!existsSync(job.driverPidFile)) return null;
  const pid = Number(readFileSync(job.driverPidFile, 'utf8').trim());
  return pid > 0 ? pid : null;
}

interface PryingReport {
  readonly job: string;
  readonly victim: string;
  readonly env_secrets: string[];
  readonly token_file: { ok: boolean };
  readonly redis_url: string | null;
  readonly redis_write: { ok: boolean; error?: string };
  readonly victim_key_files: string[];
  readonly victim_environ: Record<string, { ok: boolean; secrets: string[] }>;
  readonly forged_progress: { ok: boolean; got?: { sent: string[]; undelivered: number }; error?: string };
}

test.serial('a job\'s environment has no secrets; a use case forging another job\'s progress moves nothing', async (t) => {
  // Secrets the orchestrator's process holds: none may reach a job.
  process.env['DIAMOND_TOKEN'] = 'dmd_orchestrator-secret-for-the-test';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'not-for-tenants';
  const o = await startTestOrchestrator('orch-tenant');
  process.env['DIAMOND_REDIS_URL'] = o.config.redis.url;
  t.teardown(() => o.teardown());
  const victim = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  const prying = jobIdFor('prying', 'A', o.options.jobPrefix);

  await o.produce([1, 2, 3].map((i) => customerRecord(`r-${i}`, `c${i}`, { amount: -i })));
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix);
  const running = await o.waitForJob(victim, (r) => r.state === 'running');
  await consumeAll(kafka, o.options.topics.output, 3, 120_000);
  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  await waitFor('the victim committing the end offsets', async () => {
    const committed = await readJobOffsets(o.admin, victim, o.options.topics.input);
    return JSON.stringify(committed) === JSON.stringify(ends) ? committed : null;
  });

  // The real driver's environment, as the kernel holds it.
  const pid = await waitFor('the victim driver writing its pid', () => driverPid(running.current!));
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  const names = environ.map((entry) => entry.split('=')[0]!);
  t.true(names.includes('PYSPARK_PYTHON') && names.includes('JAVA_HOME'), `the job got what it needs: ${names.join(' ')}`);
  t.deepEqual(names.filter((name) => name.startsWith('DIAMOND_') && name !== 'DIAMOND_SPARK_JARS'), [], 'no DIAMOND_* setting');
  t.false(environ.some((entry) => entry.includes('redis://') || entry.includes('dmd_') || entry.includes('not-for-tenants')), 'no token, Redis URL or other secret');
  t.false(existsSync(running.current!.driverPidFile.replace('.driver.pid', '.progress-key')), 'the runner removed its key file once read');

  // The malicious use case runs beside it and reports what it tried.
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'prying', variant: 'A', folder: fixture }, o.options.jobPrefix);
  const pryingRecord = await o.waitForJob(prying, (r) => r.state === 'running');
  await o.produce([4, 5].map((i) => customerRecord(`r-${i}`, `c${i}`, { amount: -i }))); // a batch for its transform
  const report = await waitFor('the prying use case reporting its attempts', () => {
    const line = readFileSync(pryingRecord.current!.logFile, 'utf8').split('\n').find((l) => l.startsWith('{"prying"'));
    return line ? (JSON.parse(line) as { prying: PryingReport }).prying : null;
  });
  t.log(JSON.stringify(report));
  t.is(report.victim, victim);
  // PYSPARK_GATEWAY_SECRET is Spark's own, per application (the driver's py4j gateway): the job's, not the platform's.
  t.deepEqual(report.env_secrets.filter((name) => name !== 'PYSPARK_GATEWAY_SECRET'), [], 'it found no DIAMOND_*, token, secret or password variable');
  t.is(report.redis_url, null, 'it found no Redis URL');
  t.false(report.redis_write.ok);
  t.deepEqual(report.victim_key_files, [], 'the victim\'s progress key is not on disk');
  t.true(Object.keys(report.victim_environ).length > 0, 'it found the victim\'s driver');
  t.true(Object.values(report.victim_environ).every((e) => e.secrets.length === 0), 'the victim\'s environment has no secret either');
  t.true(report.forged_progress.ok, `the forged messages were published: ${JSON.stringify(report.forged_progress)}`);
  t.is(report.forged_progress.got?.undelivered, 0);
  t.is(report.forged_progress.got?.sent.length, 6);

  // The victim goes on. A record produced after the forgery: the victim's report of it is keyed
  // like the forged ones (same partition of the progress topic, written after them), so once it
  // is committed the orchestrator has consumed every forged report.
  await o.produce([customerRecord('r-6', 'c6', { amount: -6 })]);
  await consumeAll(kafka, o.options.topics.output, 6, 120_000);
  const after = await topicEndOffsets(o.admin, o.options.topics.input);
  const committed = await waitFor('the victim committing the new end offsets', async () => {
    const offsets = await readJobOffsets(o.admin, victim, o.options.topics.input);
    return JSON.stringify(offsets) === JSON.stringify(after) ? offsets : null;
  });
  t.deepEqual(await readJobOffsets(o.admin, victim, o.options.topics.input), committed, 'the huge forged offset moved nothing');
  t.is(await o.reconciler.store.reportedAt(victim, 'forged-huge'), null, 'the forged progress was not recorded');
  t.is(await o.reconciler.store.reportedAt(victim, 'forged-small'), null);
  t.notRegex((await o.reconciler.store.lastFailure(victim))?.message ?? '', /forged/, 'the forged failure was not recorded');
  t.is((await o.reconciler.store.getJob(victim))?.state, 'running');
});
