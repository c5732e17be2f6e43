/**
 * PySpark 4 with the Kafka connector, launched with spark-submit exactly as jobs will be:
 * a Structured Streaming query copies N records from one topic to another.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sparkSubmit } from '../../shared/runtime-paths.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { config, consumeAll, testKafka, uniqueName } from '../support/env.ts';

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
});
