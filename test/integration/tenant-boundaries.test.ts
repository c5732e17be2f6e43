/**
 * Tenant code gets least privilege, the parts that need no Spark: a deployment's folder must
 * lie under the use case roots; requirements.txt may not choose where pip installs from; and
 * progress commits offsets only when signed by a live launch of its job and within the
 * partition's high watermark (real Kafka and Redis, the orchestrator's own ProgressIngest).
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { httpStatusOf as statusForError } from '../../shared/errors.ts';
import { readJobOffsets } from '../../infra/orchestrator/offsets.ts';
import { ProgressIngest } from '../../infra/orchestrator/progress-ingest.ts';
import { newProgressKey, signProgress } from '../../infra/orchestrator/progress-signature.ts';
import type { JobProcess } from '../../infra/orchestrator/state.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { UsecaseFolderRefusedError, isUnderUsecaseRoots } from '../../infra/orchestrator/usecase-roots.ts';
import { PipOptionRefusedError } from '../../infra/orchestrator/requirements-policy.ts';
import { config as testConfig, testKafka, uniqueName } from '../support/env.ts';

function usecaseFolder(parent: string, name: string, requirements?: string): string {
  const folder = join(parent, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'usecase.yaml'), `name: ${name}\ndescription: fixture\nowner: platform-tests\nvariants:\n  A: job.py\n`);
  writeFileSync(join(folder, 'job.py'), 'def transform(records, ctx):\n    return records\n');
  if (requirements !== undefined) writeFileSync(join(folder, 'requirements.txt'), requirements);
  return folder;
}

test('a deploy from /tmp is refused with 422, naming the allowed roots; .. and symlinks out of a root are refused too', async (t) => {
  const config = loadConfig({ ...process.env, DIAMOND_USECASE_ROOTS: '' }); // the production default: <projectRoot>/usecases
  t.deepEqual(config.usecases.roots, [join(config.projectRoot, 'usecases')]);
  const store = new DeploymentStore(createRedis(config, { keyPrefix: `${uniqueName('tenant-roots')}:` }));
  t.teardown(() => store.close());
  const outside = usecaseFolder(mkdtempSync(join(tmpdir(), 'diamond-outside-')), 'outsider');
  const error = await t.throwsAsync(deployUsecase(config, store, null, { usecase: 'outsider', variant: 'A', folder: outside }), { instanceOf: UsecaseFolderRefusedError });
  t.is(error.code, 'DIAMOND_USECASE_DIR_REFUSED');
  t.is(statusForError(error), 422);
  t.true(error.message.includes(`allowed use case roots: ${join(config.projectRoot, 'usecases')}`), error.message);
  t.is(await store.getDeployment('outsider', 'A'), null);
  // `..` out of the root, and a symlink inside a root that points outside it.
  t.false(isUnderUsecaseRoots(join(config.projectRoot, 'usecases', '..', 'infra'), config.usecases.roots));
  const root = mkdtempSync(join(tmpdir(), 'diamond-root-'));
  symlinkSync(outside, join(root, 'linked'));
  t.false(isUnderUsecaseRoots(join(root, 'linked'), [root]));
  t.true(isUnderUsecaseRoots(usecaseFolder(root, 'inside'), [root]));
  t.true(isUnderUsecaseRoots(join(config.projectRoot, 'usecases', 'data_quality'), config.usecases.roots));
});

for (const [line, option] of [['--index-url https://pypi.evil.example/simple', '--index-url'], ['git+https://github.com/evil/payload.git', 'git+']] as const) {
  test(`a requirements.txt with ${option} is refused naming the line, before pip runs`, async (t) => {
    const store = new DeploymentStore(createRedis(testConfig, { keyPrefix: `${uniqueName('tenant-pip')}:` }));
    t.teardown(() => store.close());
    const folder = usecaseFolder(mkdtempSync(join(tmpdir(), 'diamond-pip-')), 'pip_options', `humanize==4.9.0\n${line}\n`);
    const error = await t.throwsAsync(deployUsecase(testConfig, store, null, { usecase: 'pip_options', variant: 'A', folder }), { instanceOf: PipOptionRefusedError });
    t.is(error.code, 'DIAMOND_USECASE_PIP_OPTION_REFUSED');
    t.is(statusForError(error), 422);
    t.true(error.message.includes(`line '${line}' uses ${option}`), error.message);
  });
}

test('progress commits only when signed by a live launch of its job and within the high watermark', async (t) => {
  const kafka = testKafka();
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  const redis = createRedis(testConfig, { keyPrefix: `${uniqueName('tenant-progress')}:` });
  const store = new DeploymentStore(redis);
  t.teardown(async () => {
    const keys = await redis.keys('*');
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(redis.options.keyPrefix?.length ?? 0)));
    await store.close();
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  });
  const input = uniqueName('tenant-records');
  await ensureTopics(admin, [{ topic: input, partitions: 1 }]);
  await producer.send({ topic: input, acks: -1, messages: Array.from({ length: 5 }, (_, i) => ({ value: `r${i}` })) });
  const jobPrefix = `${uniqueName('tp')}.`;
  const jobId = `${jobPrefix}uc.victim.A`;
  const key = newProgressKey();
  const launch: JobProcess = { groupPid: 1, marker: 'm', driverPidFile: '/nonexistent', exitFile: '/nonexistent', logFile: '/nonexistent', version: 'v1', startedAt: Date.now(), progressKey: key };
  await store.putJob({ jobId, usecase: 'victim', variant: 'A', state: 'running', generation: 1, current: launch, next: null, retiring: [], restarts: 0, crashes: [], nextStartAt: null, lastError: null, lastLogFile: null, updatedAt: Date.now() });
  const warnings: string[] = [];
  const log = createLogger({ logLevel: 'warn' }, { fd: 2, bindings: { test: 'tenant-progress' } });
  const spy = Object.assign(Object.create(log) as typeof log, { warn: (obj: object, msg: string) => { warnings.push(msg); log.warn(obj, msg); } });
  const ingest = new ProgressIngest(kafka, admin, store, { jobPrefix, progressGroup: uniqueName('tp-orch'), topics: { input, output: 'x', rejected: 'x', progress: 'x', events: 'x' } }, spy);
  const report = (endOffset: number): string => JSON.stringify({
    event: 'progress', job: jobId, usecase: 'victim', variant: 'A', version: 'v1', at: new Date().toISOString(),
    batch_id: 1, start_offsets: {}, end_offsets: { '0': endOffset }, rows_in: endOffset, rows_out: 0, rows_rejected: 0,
  });

  await ingest.handle(report(2)); // unsigned
  await ingest.handle(signProgress(report(2), newProgressKey())); // another launch's (or a forger's) key
  const tampered = signProgress(report(2), key).replace('"0":2', '"0":4');
  await ingest.handle(tampered);
  t.deepEqual(await readJobOffsets(admin, jobId, input), { '0': -1 }, 'nothing unsigned, wrongly signed or tampered is committed');
  t.is(warnings.filter((w) => /not signed by a live launch/.test(w)).length, 3);

  await ingest.handle(signProgress(report(1_000_000), key)); // beyond the end: the whole report is refused
  t.deepEqual(await readJobOffsets(admin, jobId, input), { '0': -1 }, 'an offset beyond the high watermark moves nothing');
  t.true(warnings.some((w) => /beyond the end of its partition/.test(w)));

  await ingest.handle(signProgress(report(3), key));
  t.deepEqual(await readJobOffsets(admin, jobId, input), { '0': 3 }, 'a signed report within the partition commits');
  await ingest.handle(signProgress(report(5), key)); // exactly the high watermark is the end of the data: allowed
  t.deepEqual(await readJobOffsets(admin, jobId, input), { '0': 5 });
});
