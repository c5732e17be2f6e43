/**
 * The use case runner with spark-submit against the real Kafka and registry: known records
 * in, the exact feedback rows out on feedback.raw, the end offsets in the progress messages,
 * a graceful stop on SIGTERM, a crashing use case reported with its file and line, the
 * rejection paths (a record the user's code raised on, a row breaking the Feedback contract,
 * undecodable input: each in the rejected topic with its reason, the job going on) and exit
 * code 3 for an invalid manifest.
 * Spark is heavy on 2 cores, so these run one at a time.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { parseProgressMessage, parseRecordFailure, type ProgressMessage } from '../../shared/messages.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { readSchema, type CustomerRecord, type Feedback } from '../../shared/schemas.ts';
import { config, consumeAll, consumeUntil, readToEnd, testKafka, type ConsumedMessage } from '../support/env.ts';
import { createJobTopics, startUsecaseJob } from '../support/usecase-job.ts';

const registry = createRegistry(config);
const kafka = testKafka();

function record(record_id: string, customer_id: string, fields: Partial<CustomerRecord> = {}): CustomerRecord {
  const at = Date.UTC(2026, 10, 1, 10, 10);
  return { record_id, customer_id, source: 'test', event_time: at, type: 'purchase', amount: 10, currency: 'EUR', attributes: {}, ingested_at: at, ...fields };
}

async function produce(topic: string, messages: { key: string; value: Buffer }[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
}

function progress(messages: ConsumedMessage[]): ProgressMessage[] {
  // Every report of the real runner must satisfy the contract the orchestrator parses with.
  return messages.map((m) => {
    const parsed = parseProgressMessage(m.value);
    if (!parsed.ok) throw new Error(`the runner sent a progress message that breaks progress.schema.json: ${parsed.field} ${parsed.problem}: ${m.value?.toString()}`);
    return parsed.message;
  });
}

async function endOffsets(topic: string): Promise<Record<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  return Object.fromEntries(offsets.map((p) => [String(p.partition), Number(p.high)]));
}

/** What the SDK promises for feedback_id, computed independently. */
function expectedFeedbackId(usecase: string, variant: string, key: string, kind: string): string {
  return createHash('sha256').update([usecase, variant, key, kind].join('|')).digest('hex');
}

async function decodeFeedback(messages: ConsumedMessage[]): Promise<(Feedback & { key: string | null })[]> {
  return Promise.all(messages.map(async (m) => ({ ...((await registry.decode(m.value!)) as Feedback), key: m.key })));
}

test.serial('data_quality: exact feedback for known records of two writer versions, progress offsets, SIGTERM stops cleanly', async (t) => {
  const topics = await createJobTopics(kafka, 'dq');
  // An older writer version (before currency and attributes existed), then the current contract.
  const current = readSchema('CustomerRecord');
  const older = { ...current, fields: current.fields.filter((f) => f.name !== 'currency' && f.name !== 'attributes') };
  const { id: olderId } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(older) }, { subject: topics.recordsSubject, compatibility: COMPATIBILITY.BACKWARD });
  const currentId = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  t.not(olderId, currentId);

  const oldRecord: Partial<CustomerRecord> = record('r-old', 'acme', { amount: null });
  delete oldRecord.currency;
  delete oldRecord.attributes;
  const records = [
    record('r-1', 'acme'),
    record('r-2', 'globex', { amount: -5, currency: 'USD' }),
    record('r-3', 'globex', { amount: 5_000_000, currency: 'USD' }),
    record('r-4', 'initech', { type: 'refund', amount: 3, currency: null }),
    record('r-5', 'initech', { type: 'login', amount: null, currency: null, event_time: Date.UTC(2099, 0, 1) }),
  ];
  await produce(topics.input, [
    { key: 'acme', value: await registry.encode(olderId, oldRecord) },
    ...(await Promise.all(records.map(async (r) => ({ key: r.customer_id, value: await registry.encode(currentId, r) })))),
    { key: 'acme', value: Buffer.from('this is not Avro') },
  ]);

  const folder = join(config.projectRoot, 'usecases', 'data_quality');
  const job = startUsecaseJob(folder, 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });

  const expected = [
    ['acme', 'r-old', 'missing_amount'], ['globex', 'r-2', 'negative_amount'], ['globex', 'r-3', 'amount_out_of_range'],
    ['initech', 'r-4', 'missing_currency'], ['initech', 'r-5', 'future_timestamp'],
  ].sort();
  const feedback = await decodeFeedback(await consumeAll(kafka, topics.output, expected.length, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${job.log().slice(-3000)}`);
  }));
  t.deepEqual(feedback.map((f) => [f.customer_id, f.record_ids.join(','), f.kind]).sort(), expected);
  for (const f of feedback) {
    t.is(f.key, f.customer_id, 'keyed by customer_id');
    t.is(f.feedback_id, expectedFeedbackId('data_quality', 'A', f.record_ids.join(','), f.kind));
    t.is(f.usecase, 'data_quality');
    t.is(f.variant, 'A');
    t.regex(f.version, /^[0-9a-f]{12}$/);
  }

  const [rejected] = await consumeAll(kafka, topics.rejected, 1, 60_000);
  t.regex(rejected!.value!.toString(), /undecodable record/);

  const ends = await endOffsets(topics.input);
  const reports = progress(await consumeUntil(kafka, topics.progress, (messages) => {
    const last = progress(messages).filter((m) => m.event === 'progress').at(-1);
    return last !== undefined && JSON.stringify(last.end_offsets) === JSON.stringify(ends);
  }, 60_000));
  const batches = reports.filter((m) => m.event === 'progress');
  t.is(batches.reduce((sum, m) => sum + (m.rows_in ?? 0), 0), 7, 'every input message counted once');
  t.is(batches.reduce((sum, m) => sum + (m.rows_out ?? 0), 0), expected.length);
  t.true(batches.every((m) => m.job === 'uc.data_quality.A'));

  process.kill(await job.driverPid(), 'SIGTERM');
  t.is(await job.exited, 0, job.log().slice(-3000));
  const after = progress(await consumeUntil(kafka, topics.progress, (messages) => progress(messages).some((m) => m.event === 'stopped'), 30_000));
  t.truthy(after.find((m) => m.event === 'stopped'));
});

test.serial('SIGTERM stops a job whose batches take longer than its trigger, at a boundary: every record before it reported, stopped last', async (t) => {
  // Records that take 0.2 s each, fed faster than that: each batch starts the moment the
  // previous one ends (Spark: "falling behind"), so the query is never seen between two batches.
  const topics = await createJobTopics(kafka, 'behind');
  const id = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  let sent = 0;
  const send = async (): Promise<void> => {
    const r = record(`f-${sent}`, `c${sent % 5}`, { amount: -1 });
    sent += 1;
    await producer.send({ topic: topics.input, acks: -1, messages: [{ key: r.customer_id, value: await registry.encode(id, r) }] });
  };
  await send();
  const job = startUsecaseJob(join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases', 'slow_batches'), 'A', topics, ['--trigger', '100ms']);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  await consumeAll(kafka, topics.output, 1, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${job.log().slice(-3000)}`);
  });
  const end: { code: number | null | 'running' } = { code: 'running' };
  void job.exited.then((code) => { end.code = code; });
  const feed = async (until: () => boolean, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!until() && Date.now() < deadline) {
      await send();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await feed(() => false, 5000); // the batches fall behind
  process.kill(await job.driverPid(), 'SIGTERM');
  await feed(() => end.code !== 'running', 90_000); // the feed goes on: there never is a moment between two batches
  t.is(end.code, 0, `the job did not stop on SIGTERM while its batches fell behind:\n${job.log().slice(-3000)}`);
  // It ended after the batch running at the request, or at the latest in the next (which it then finished).
  const logged = (msg: RegExp): { finished_batch_id?: number; last_batch_id?: number } | undefined => job.log().split('\n').filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; finished_batch_id?: number; last_batch_id?: number }).find((entry) => msg.test(entry.msg));
  const requested = logged(/^stop requested/);
  const stopped = logged(/^query (stopped|ended)/);
  t.truthy(logged(/^query ended after its running batch/), `the running batch was cancelled instead of finished:\n${job.log().slice(-3000)}`);
  t.true(requested?.finished_batch_id !== undefined && stopped?.last_batch_id !== undefined, job.log().slice(-3000));
  // finished_batch_id counts committed batches: a request that lands after a batch wrote but
  // before it committed sees that batch as unfinished, and the next one is the first write the
  // runner can end after. Any later is waiting through batches.
  t.true(stopped!.last_batch_id! <= requested!.finished_batch_id! + 2, `asked to stop after batch ${requested!.finished_batch_id}, stopped after batch ${stopped!.last_batch_id}: it waited through batches for a moment between two`);
  const reports = progress(await consumeUntil(kafka, topics.progress, (messages) => progress(messages).some((m) => m.event === 'stopped'), 30_000));
  t.is(reports.at(-1)?.event, 'stopped', 'stopped is the last report: every batch before it was reported first');
  // What the reports cover is what was written: no record of the covered range is missing from the output.
  const last = reports.filter((m) => m.event === 'progress').at(-1)!;
  const covered = Object.values(last.end_offsets ?? {}).reduce((sum, offset) => sum + offset, 0);
  const output = await decodeFeedback(await readToEnd(kafka, topics.output));
  t.true(new Set(output.map((f) => f.record_ids.join(','))).size >= covered, `${covered} records reported processed, all in the output`);
  // A batch cancelled mid-write and run again wrote the rows its tasks had sent twice.
  t.is(new Set(output.map((f) => f.feedback_id)).size, output.length, 'no feedback written twice by the stop');
});

test.serial('spending_spike (stateful): windows emitted once the watermark passes, with deterministic ids', async (t) => {
  const topics = await createJobTopics(kafka, 'spike');
  const id = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const input = [
    record('s-1', 'acme', { amount: 1500, event_time: Date.UTC(2026, 10, 1, 10, 10) }),
    record('s-2', 'globex', { amount: 20, event_time: Date.UTC(2026, 10, 1, 10, 12) }),
    // Later event time: moves the watermark past the windows above so they are emitted.
    record('s-3', 'initech', { amount: 1, event_time: Date.UTC(2026, 10, 1, 13, 0) }),
  ];
  await produce(topics.input, await Promise.all(input.map(async (r) => ({ key: r.customer_id, value: await registry.encode(id, r) }))));

  const job = startUsecaseJob(join(config.projectRoot, 'usecases', 'spending_spike'), 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  const feedback = await decodeFeedback(await consumeAll(kafka, topics.output, 2, 180_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${job.log().slice(-3000)}`);
  }));
  const keys = feedback.map((f) => `acme|${f.details['window_start']!.slice(0, 16)}`).sort();
  t.deepEqual(keys, ['acme|2026-11-01T09:30', 'acme|2026-11-01T10:00']);
  for (const f of feedback) {
    t.deepEqual(f.record_ids, ['s-1']);
    t.is(f.severity, 'warning');
    t.is(f.feedback_id, expectedFeedbackId('spending_spike', 'A', `acme|${f.details['window_start']!.slice(0, 16)}`, 'spending_spike'));
  }
  process.kill(await job.driverPid(), 'SIGTERM');
  t.is(await job.exited, 0, job.log().slice(-3000));
});

test.serial("a use case whose code raises is reported with the user's file and line", async (t) => {
  const topics = await createJobTopics(kafka, 'crash');
  const id = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  await produce(topics.input, [{ key: 'acme', value: await registry.encode(id, record('c-1', 'acme')) }]);
  const folder = join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases', 'crashing');
  const job = startUsecaseJob(folder, 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  t.is(await job.exited, 2, job.log().slice(-3000));
  const failure = job.log().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['error'] === 'user_code');
  t.truthy(failure, job.log().slice(-3000));
  t.regex(String(failure?.['file']), /fixtures\/usecases\/crashing\/job\.py$/);
  t.is(failure?.['line'], 3);
  t.regex(String(failure?.['message']), /ZeroDivisionError/);
  const reports = progress(await consumeUntil(kafka, topics.progress, (messages) => progress(messages).some((m) => m.event === 'failed'), 30_000));
  const failed = reports.find((m) => m.event === 'failed');
  t.is(failed?.line, 3);
});

test.serial('rejection paths of the real runner: a record feedback() raised on (with file and line), a row breaking the Feedback contract, undecodable input; each in the rejected topic with its reason, and the job goes on past them', async (t) => {
  const topics = await createJobTopics(kafka, 'reject');
  const id = await registerContract(registry, 'CustomerRecord', topics.recordsSubject);
  const garbage = Buffer.from('not Avro at all');
  // One key, so one partition in this order: the good record after the bad ones proves the job moved past them.
  const encoded = async (recordId: string): Promise<{ key: string; value: Buffer }> => ({ key: 'acme', value: await registry.encode(id, record(recordId, 'acme')) });
  await produce(topics.input, [await encoded('good-1'), await encoded('boom'), { key: 'acme', value: garbage }, await encoded('no-severity'), await encoded('good-2')]);
  const folder = join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases', 'rejecting');
  const job = startUsecaseJob(folder, 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  const withLog = (error: Error): never => { throw new Error(`${error.message}\n${job.log().slice(-3000)}`); };

  const rejected = (await consumeAll(kafka, topics.rejected, 3, 180_000).catch(withLog)).map((m) => JSON.parse(m.value!.toString()) as Record<string, unknown>);
  const byReason = (pattern: RegExp): Record<string, unknown> | undefined => rejected.find((r) => pattern.test(String(r['reason'])));
  const raised = byReason(/^feedback\(\) raised$/);
  t.truthy(raised, JSON.stringify(rejected));
  t.is(raised?.['record_id'], 'boom');
  t.regex(String(raised?.['file']), /fixtures\/usecases\/rejecting\/job\.py$/, "the user's file");
  t.is(raised?.['line'], 9, "the user's line");
  t.is(raised?.['function'], 'feedback');
  t.regex(String(raised?.['traceback']), /ValueError: cannot score record boom/);
  t.deepEqual([raised?.['exception'], raised?.['message']], ['ValueError', 'cannot score record boom']);
  const contract = parseRecordFailure(raised);
  t.true(contract.ok, contract.ok ? '' : `the envelope is a RecordFailure: ${contract.field} ${contract.problem}`);
  const broken = byReason(/^output row breaks the Feedback contract: severity is null$/);
  t.truthy(broken, JSON.stringify(rejected));
  t.deepEqual((JSON.parse(String(broken?.['row'])) as { record_ids: string[] }).record_ids, ['no-severity']);
  const undecodable = byReason(/undecodable/);
  t.truthy(undecodable, JSON.stringify(rejected));
  t.is(Number(undecodable?.['offset']), 2, 'the third message of its partition');
  t.deepEqual(Buffer.from(String(undecodable?.['value_base64']), 'base64'), garbage, 'the raw bytes, untouched');
  t.true(rejected.every((r) => r['usecase'] === 'rejecting' && r['variant'] === 'A'));

  // Still running, and a record sent after the bad ones is processed by a later batch.
  await produce(topics.input, [await encoded('good-3')]);
  const feedback = await decodeFeedback(await consumeAll(kafka, topics.output, 3, 120_000).catch(withLog));
  t.deepEqual(feedback.map((f) => f.record_ids.join(',')).sort(), ['good-1', 'good-2', 'good-3']);
  t.is(job.child.exitCode, null, 'the job did not exit over a bad record');

  const ends = await endOffsets(topics.input);
  const reports = progress(await consumeUntil(kafka, topics.progress, (messages) => {
    const last = progress(messages).filter((m) => m.event === 'progress').at(-1);
    return last !== undefined && JSON.stringify(last.end_offsets) === JSON.stringify(ends);
  }, 60_000)).filter((m) => m.event === 'progress');
  t.is(reports.reduce((sum, m) => sum + (m.rows_in ?? 0), 0), 6, 'every input message counted once');
  t.is(reports.reduce((sum, m) => sum + (m.rows_rejected ?? 0), 0), 3);
  t.is(reports.reduce((sum, m) => sum + (m.rows_out ?? 0), 0), 3);
  // Nothing more than the three rejections, read up to the topic's end.
  t.is((await readToEnd(kafka, topics.rejected)).length, 3);

  process.kill(await job.driverPid(), 'SIGTERM');
  t.is(await job.exited, 0, job.log().slice(-3000));
});

test.serial('an invalid manifest: the real runner exits with code 3 and reports the field to fix on the progress topic', async (t) => {
  const topics = await createJobTopics(kafka, 'invalid');
  const job = startUsecaseJob(join(config.projectRoot, 'test', 'integration', 'fixtures', 'usecases', 'invalid_manifest'), 'A', topics);
  t.teardown(() => { job.child.kill('SIGKILL'); });
  t.is(await job.exited, 3, job.log().slice(-3000));
  const logged = job.log().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['error'] === 'ManifestError');
  t.regex(String(logged?.['msg']), /usecase\.yaml is invalid:\n {2}- trigger: is 'every so often'/, job.log().slice(-3000));
  const failed = progress(await consumeUntil(kafka, topics.progress, (messages) => progress(messages).some((m) => m.event === 'failed'), 30_000)).find((m) => m.event === 'failed');
  t.is(failed?.error, 'ManifestError');
  t.regex(failed?.message ?? '', /trigger: is 'every so often'/);
  t.is(failed?.job, 'uc.invalid_manifest.A');
});
