/**
 * PySpark 4 with the Kafka connector, launched with spark-submit exactly as jobs will be:
 * a Structured Streaming query copies N records from one topic to another. Its event log
 * (an isolated DIAMOND_SPARK_EVENT_LOG_DIR) is then served by `diamond history`.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sparkSubmit } from '../../shared/runtime-paths.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { loadConfig } from '../../shared/config.ts';
import { consumeAll, freePort, testKafka, uniqueName } from '../support/env.ts';

const eventLogs = mkdtempSync(join(tmpdir(), 'diamond-spark-events-'));
const config = loadConfig({ ...process.env, DIAMOND_SPARK_EVENT_LOG_DIR: eventLogs });
test.after.always(() => rmSync(eventLogs, { recursive: true, force: true }));

test('spark-submit streams exactly N records from one topic to another', async (t) => {
  const kafka = testKafka();
  const source = uniqueName('test-spark-in');
  const target = uniqueName('test-spark-out');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: source, partitions: 2 }, { topic: target, partitions: 2 }]);
  await admin.disconnect();

  const n = 250;
  const sent = Array.from({ length: n }, (_, i) => ({ key: `customer-${i % 7}`, value: JSON.stringify({ i, text: `record ${i} ✓` }) }));
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({ topic: source, acks: -1, messages: sent });
  await producer.disconnect();

  const checkpoint = mkdtempSync(join(tmpdir(), 'diamond-spark-test-'));
  t.teardown(() => rmSync(checkpoint, { recursive: true, force: true }));
  const script = join(config.projectRoot, 'test', 'integration', 'fixtures', 'copy_topic.py');
  const submit = sparkSubmit(config, script, [config.kafka.brokers.join(','), source, target, checkpoint]);
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(submit.command, submit.args, { env: submit.env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (exitCode) => resolve({ code: exitCode, output }));
  });
  t.is(code, 0, output.slice(-4000));
  t.regex(output, new RegExp(`copied ${n} records in \\d+ batches`));

  const received = await consumeAll(kafka, target, n, 60_000);
  t.is(received.length, n);
  const asText = (m: { key: string | null; value: string }): string => `${m.key}|${m.value}`;
  t.deepEqual(received.map((m) => asText({ key: m.key, value: m.value?.toString() ?? '' })).sort(), sent.map(asText).sort());
  // Nothing more than N: the end offsets of the target add up to exactly N.
  const admin2 = kafka.admin();
  await admin2.connect();
  const ends = await admin2.fetchTopicOffsets(target);
  await admin2.disconnect();
  t.is(ends.reduce((sum, p) => sum + Number(p.high), 0), n);

  // `diamond history` serves that application from its event log.
  const port = await freePort();
  const history = spawn(process.execPath, ['infra/cli/bin.js', 'history', '--port', String(port), '--json'], { cwd: config.projectRoot, env: { ...process.env, DIAMOND_SPARK_EVENT_LOG_DIR: eventLogs, DIAMOND_LOG_LEVEL: 'warn' } });
  t.teardown(() => history.kill('SIGKILL'));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: history.stdout }).once('line', resolve);
    history.once('exit', (exitCode) => reject(new Error(`diamond history exited ${exitCode}`)));
  });
  const served = JSON.parse(line) as { url: string; eventLogDir: string };
  t.deepEqual(served, { url: `http://127.0.0.1:${port}`, eventLogDir: eventLogs });
  const deadline = Date.now() + 60_000;
  let apps: { name: string; attempts: { completed: boolean }[] }[] = [];
  while (!apps.some((a) => a.name === `diamond-test-copy-${source}`) && Date.now() < deadline) {
    apps = (await (await fetch(`${served.url}/api/v1/applications`)).json()) as typeof apps;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  t.true(apps.find((a) => a.name === `diamond-test-copy-${source}`)?.attempts[0]?.completed, JSON.stringify(apps));
  history.kill('SIGTERM');
  t.is(await new Promise<number | null>((resolve) => history.once('exit', resolve)), 0, 'Ctrl-C stops it cleanly');
});
