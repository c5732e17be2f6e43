/**
 * The Confluent wire format proven on both sides: TypeScript (@kafkajs/confluent-schema-registry)
 * encodes and Python (diamond_sdk._runtime.wire + fastavro) decodes, and the other way round, with
 * schema ids resolved through the real registry.
 */
import test from 'ava';
import { join } from 'node:path';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import type { CustomerRecord, Feedback } from '../../shared/schemas.ts';
import { config, uniqueName } from '../support/env.ts';
import { runPython } from '../support/python.ts';

const registry = createRegistry(config);
const tool = join(config.projectRoot, 'test', 'integration', 'fixtures', 'wire_tool.py');

const records: CustomerRecord[] = [
  { record_id: 'r-1', customer_id: 'acme', source: 'http', event_time: 1_793_534_400_123, type: 'purchase', amount: 1234.56, currency: 'EUR', attributes: { channel: 'web', note: 'naïve ✓ 😀' }, ingested_at: 1_793_534_401_000 },
  { record_id: 'r-2', customer_id: 'globex', source: 'file', event_time: 0, type: 'login', amount: null, currency: null, attributes: {}, ingested_at: 1 },
];

test('records encoded by TypeScript decode in Python', async (t) => {
  const subject = uniqueName('test-ts-to-py-value');
  const id = await registerContract(registry, 'CustomerRecord', subject);
  const lines = await Promise.all(records.map(async (record) => (await registry.encode(id, record)).toString('hex')));
  const result = await runPython([tool, 'decode', config.registry.url, 'CustomerRecord'], lines.join('\n') + '\n');
  t.is(result.code, 0, result.stderr);
  const decoded = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { schema_id: number; record: CustomerRecord });
  t.deepEqual(decoded.map((d) => d.schema_id), [id, id]);
  t.deepEqual(decoded.map((d) => d.record), records);
});

test('feedback encoded by Python decodes in TypeScript', async (t) => {
  const subject = uniqueName('test-py-to-ts-value');
  const feedback: Feedback[] = [
    { feedback_id: 'f-1', customer_id: 'acme', usecase: 'data_quality', variant: 'A', version: 'abc123', kind: 'missing_field', severity: 'warning', score: 0.5, message: 'amount is missing', details: { field: 'amount' }, record_ids: ['r-1', 'r-2'], event_time: 1_793_534_400_123, produced_at: 1_793_534_402_000 },
    { feedback_id: 'f-2', customer_id: 'globex', usecase: 'spending_spike', variant: 'B', version: 'def456', kind: 'spike', severity: 'critical', score: null, message: 'Ünïcode ✓', details: {}, record_ids: [], event_time: 0, produced_at: 1 },
  ];
  const result = await runPython([tool, 'encode', config.registry.url, 'Feedback', subject], feedback.map((f) => JSON.stringify(f)).join('\n') + '\n');
  t.is(result.code, 0, result.stderr);
  const id = await registry.getLatestSchemaId(subject);
  const decoded = await Promise.all(result.stdout.trim().split('\n').map(async (hex) => {
    const buffer = Buffer.from(hex, 'hex');
    t.is(buffer.readUInt8(0), 0);
    t.is(buffer.readUInt32BE(1), id);
    return { ...(await registry.decode(buffer)) } as Feedback;
  }));
  t.deepEqual(decoded, feedback);
});
