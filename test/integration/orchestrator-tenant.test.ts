/**
 * Tenant code gets least privilege, with real Kafka, Redis and Spark: a running job's driver
 * environment holds none of the orchestrator's secrets, and a malicious use case (fixture
 * `prying`) gets nothing: it looks for the token and the Redis URL in its environment; reads
 * the platform's files (local.json with the admin token, the Redis password, Redis' config and
 * append-only file, a world-readable file planted in the platform's home); connects to the
 * platform's Redis at its port and writes a token; reads the victim job's progress key files;
 * and forges progress for the victim (unsigned and self-signed, a huge end offset, a fake version
 * and a fake failure). The victim's committed offsets stay within its partitions and none of the
 * forged reports is recorded. The fixture logs each attempt and its outcome; the test checks
 * they happened. As root (CI), the jobs run as the job user: the file reads must fail; not
 * root, the jobs run as the platform's user, who owns those files, and only the rest is checked.
 * Two Spark jobs; serial.
 */
import test from 'ava';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { jobUser } from '../../infra/orchestrator/job-user.ts';
import { localConfigPath, writeLocalPlatform } from '../../infra/platform/platform-file.ts';
import { createRedis } from '../../shared/redis.ts';
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

interface Attempt {
  readonly ok: boolean;
  readonly error?: string;
}

/** The fixture, copied where the test can tell it the platform's Redis port (a manifest param), readable by the job user. */
function pryingFolder(redisPort: number, platformHome: string): string {
  const parent = mkdtempSync(join(tmpdir(), 'diamond-prying-'));
  chmodSync(parent, 0o755);
  const folder = join(parent, 'prying');
  cpSync(fixture, folder, { recursive: true });
  writeFileSync(join(folder, 'usecase.yaml'), readFileSync(join(folder, 'usecase.yaml'), 'utf8') + `params:\n  redis_port: ${redisPort}\n  platform_home: ${JSON.stringify(platformHome)}\n`);
  return folder;
}

interface PryingReport {
  readonly job: string;
  readonly victim: string;
  readonly env_secrets: string[];
  readonly uid: number;
  readonly platform_files: Record<string, Attempt>;
  readonly home_listing: Attempt;
  readonly redis_url: string | null;
  readonly redis_port: number;
  readonly redis_write: Attempt & { got?: string };
  readonly victim_key_files: string[];
  readonly victim_key_reads: Record<string, Attempt>;
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
  const user = jobUser(o.config);
  const redis = createRedis(o.config);
  t.teardown(() => redis.disconnect());
  await redis.del('prying:token');
  // What a platform's home holds: the local platform file with an admin token (written as
  // `diamond up` would when this home has none), and a world-readable file planted in it.
  const platformFile = localConfigPath(o.config);
  if (!existsSync(platformFile)) {
    writeLocalPlatform(o.config, { controlUrl: 'http://127.0.0.1:1', ingestUrl: 'http://127.0.0.1:1', feedbackUrl: 'http://127.0.0.1:1', token: 'dmd_planted_for_the_prying_test' });
    t.teardown(() => rmSync(platformFile, { force: true }));
  }
  // The feedback API's runner token (`diamond up` writes it 0600 in a 0700 folder).
  const summaryToken = o.config.summary.tokenFile;
  if (!existsSync(summaryToken)) {
    mkdirSync(dirname(summaryToken), { recursive: true, mode: 0o700 });
    writeFileSync(summaryToken, 'dmd_planted_runner_token\n', { mode: 0o600 });
    t.teardown(() => rmSync(summaryToken, { force: true }));
  }
  const bait = join(o.config.home, 'prying-bait.txt');
  writeFileSync(bait, 'dmd_world_readable_bait\n', { mode: 0o644 });
  chmodSync(bait, 0o644);
  t.teardown(() => rmSync(bait, { force: true }));
  const redisPort = Number(new URL(o.config.redis.url).port || '6379');
  const pryingDir = pryingFolder(redisPort, o.config.home);
  t.teardown(() => rmSync(join(pryingDir, '..'), { recursive: true, force: true }));

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
  await deployUsecase(o.config, o.reconciler.store, null, { usecase: 'prying', variant: 'A', folder: pryingDir }, o.options.jobPrefix);
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
  // Redis: reached at the platform's port, the token write refused for want of the password.
  t.is(report.redis_port, redisPort);
  t.true(report.redis_write.ok, `it reached Redis: ${JSON.stringify(report.redis_write)}`);
  t.regex(report.redis_write.got ?? '', /^-NOAUTH/, 'Redis refused the write without the password');
  t.is(await redis.get('prying:token'), null, 'no token was written');
  // The victim's progress key: gone from its folder, and not readable by the name the launcher gives it.
  t.deepEqual(report.victim_key_files, [], 'the victim\'s progress key is not on disk');
  t.true(Object.keys(report.victim_key_reads).length > 0, 'it tried the victim\'s key file');
  t.true(Object.values(report.victim_key_reads).every((attempt) => !attempt.ok), JSON.stringify(report.victim_key_reads));
  // The platform's files: closed to the job user when the platform runs as root.
  const files = Object.entries(report.platform_files);
  t.true(files.some(([path]) => path.endsWith('local.json')) && files.some(([path]) => path.endsWith('redis.password')) && files.some(([path]) => path.endsWith('summary-runner.token')), JSON.stringify(report.platform_files));
  t.true(existsSync(o.config.redis.passwordFile) && existsSync(platformFile), 'the files it tried exist');
  if (user) {
    t.is(report.uid, user.uid, `the job ran as ${user.name}`);
    t.not(report.uid, 0);
    for (const [path, attempt] of files) t.false(attempt.ok, `${path} was not readable: ${JSON.stringify(attempt)}`);
    t.false(report.home_listing.ok, 'the platform\'s home cannot be listed');
  } else {
    t.log('not root: jobs run as the platform\'s own user, who owns its files; only Redis and the progress key are checked');
  }
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
