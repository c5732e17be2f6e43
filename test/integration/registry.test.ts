/** The schema registry's Confluent-compatible API, through @kafkajs/confluent-schema-registry. */
import test from 'ava';
import { SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { readSchema, type CustomerRecord } from '../../shared/schemas.ts';
import { config, uniqueName } from '../support/env.ts';

const registry = createRegistry(config);

function sampleRecord(): CustomerRecord {
  return {
    record_id: 'r-1', customer_id: 'acme', source: 'http', event_time: Date.UTC(2026, 10, 1, 12), type: 'purchase',
    amount: 1234.56, currency: 'EUR', attributes: { channel: 'web', note: 'naïve ✓' }, ingested_at: Date.UTC(2026, 10, 1, 12, 0, 1),
  };
}

test('a CustomerRecord round-trips through the registry in Confluent wire format', async (t) => {
  const subject = uniqueName('test-records-value');
  const id = await registerContract(registry, 'CustomerRecord', subject);
  const record = sampleRecord();
  const encoded = await registry.encode(id, record);
  t.is(encoded.readUInt8(0), 0, 'magic byte');
  t.is(encoded.readUInt32BE(1), id, 'schema id, big-endian');
  t.deepEqual({ ...(await registry.decode(encoded)) }, record);
  t.is(await registerContract(registry, 'CustomerRecord', subject), id, 'registering the same schema again returns the same id');
});

test('a BACKWARD-compatible change is accepted and old records still decode with the new reader', async (t) => {
  const subject = uniqueName('test-evolve-value');
  const v1 = await registerContract(registry, 'CustomerRecord', subject);
  const schema = readSchema('CustomerRecord');
  const v2Schema = { ...schema, fields: [...schema.fields, { name: 'channel', type: ['null', 'string'], default: null }] };
  const { id: v2 } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2Schema) }, { subject });
  t.not(v2, v1);
  const old = await registry.encode(v1, sampleRecord());
  t.deepEqual({ ...(await registry.decode(old, { [SchemaType.AVRO]: { readerSchema: v2Schema } })) }, { ...sampleRecord(), channel: null });
});

test('an incompatible change is refused with the registry saying why', async (t) => {
  const subject = uniqueName('test-breaking-value');
  await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(readSchema('CustomerRecord')) }, { subject, compatibility: COMPATIBILITY.BACKWARD });
  const schema = readSchema('CustomerRecord');
  // A new required field without a default cannot read old data: not BACKWARD compatible.
  const breaking = { ...schema, fields: [...schema.fields, { name: 'region', type: 'string' }] };
  const error = await t.throwsAsync(registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(breaking) }, { subject }));
  t.regex(error?.message ?? '', /incompatible|compatib/i);
});
