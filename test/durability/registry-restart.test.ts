/**
 * The registry restarted while a producer encodes records with it: schema ids survive (kafkasql
 * storage), and every record produced before, during and after the restart decodes, with a
 * client that has cached nothing, to the value it was produced from, under the Feedback schema.
 * It restarts the registry of the services it runs against (your own, see OPERATING.md), so it
 * runs alone, after the main suite (see ava.durability.config.js).
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../shared/logger.ts';
import { ensureTopics } from '../../shared/kafka.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { readSchema, type Feedback } from '../../shared/schemas.ts';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { config, readToEnd, testKafka, uniqueName } from '../support/env.ts';
import { feedback } from '../support/downstream.ts';

type Phase = 'before' | 'during' | 'after';

/** JSON with keys sorted at every level: the decoded record's field order is the schema's, not the builder's. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(',')}}`;
  return JSON.stringify(value);
}

test('under load, a schema keeps its id across a registry restart and every record decodes with it', async (t) => {
  const subject = uniqueName('test-durable-value');
  const topic = uniqueName('test-durable-feedback');
  const id = await registerContract(createRegistry(config), 'Feedback', subject);
  const kafka = testKafka();
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  t.teardown(async () => {
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });
  await ensureTopics(admin, [{ topic, partitions: 1 }]);

  // A producer as the platform's are: it resolves its subject's id, encodes and sends, batch
  // after batch; a fresh client each time, so no cache hides the registry being away.
  let phase = 'before' as Phase;
  let producing = true;
  let lookupFailures = 0;
  let failuresWhileDown = 0;
  let lastSentAt = Date.now();
  const sent = new Map<string, { value: Feedback; phase: Phase }>();
  const load = (async () => {
    while (producing) {
      const rows = Array.from({ length: 10 }, (_, i) => feedback({ customer_id: `c${i}` }));
      const at = phase;
      try {
        const registry = createRegistry(config);
        const latest = await registry.getLatestSchemaId(subject);
        const messages = await Promise.all(rows.map(async (row) => ({ key: row.customer_id, value: await registry.encode(latest, row) })));
        await producer.send({ topic, acks: -1, messages });
        for (const row of rows) sent.set(row.feedback_id, { value: row, phase: at });
        lastSentAt = Date.now();
      } catch {
        lookupFailures++;
        if (at === 'during') failuresWhileDown++;
      }
      // A time window: a producer that cannot send for a minute fails the test, never hangs it.
      if (Date.now() - lastSentAt > 60_000) throw new Error(`the producer sent nothing for 60 s (phase ${phase}, ${lookupFailures} failed lookups)`);
      await sleep(200);
    }
  })();
  load.catch(() => undefined); // awaited below

  while (sent.size < 50) await Promise.race([load, sleep(100)]); // rejects when the producer stalled
  phase = 'during';
  const [down] = await servicesDown(config, { only: ['registry'] });
  t.true(down?.stopped, 'the registry this checkout started was stopped');
  const [up] = await servicesUp(config, createLogger({ logLevel: 'warn' }, { fd: 2 }), { only: ['registry'] });
  t.is(up?.outcome, 'started');
  phase = 'after';
  const afterFrom = sent.size;
  while (sent.size < afterFrom + 50) await Promise.race([load, sleep(200)]);
  producing = false;
  await load;
  t.log(`${sent.size} records sent; ${lookupFailures} batches failed while the registry was away`);
  t.true(failuresWhileDown > 0, `the producer saw the registry away (the restart had an effect): ${failuresWhileDown} failed batches while it was down`);

  const registry = createRegistry(config);
  t.is(await registry.getLatestSchemaId(subject), id);
  t.is(await registerContract(registry, 'Feedback', subject), id, 'registering the same schema again returns the old id');
  const stored = (await (await fetch(`${config.registry.url}/schemas/ids/${id}`)).json()) as { schema: string };
  const schema = JSON.parse(stored.schema) as ReturnType<typeof readSchema>;
  const contract = readSchema('Feedback');
  t.deepEqual([schema.name, schema.fields.map((f) => f.name)], [contract.name, contract.fields.map((f) => f.name)], 'the id still names the Feedback schema');

  // Read with a client that has cached nothing, up to the topic's end.
  const reader = createRegistry(config);
  const messages = await readToEnd(kafka, topic);
  t.is(messages.length, sent.size, 'every record sent is on the topic');
  const wrong: string[] = [];
  const decodedPhases = new Set<Phase>();
  for (const message of messages) {
    const value = message.value!;
    if (value[0] !== 0 || value.readInt32BE(1) !== id) wrong.push(`offset ${message.offset}: schema id ${value.readInt32BE(1)}, not ${id}`);
    const decoded = JSON.parse(JSON.stringify(await reader.decode(value))) as Feedback;
    const original = sent.get(decoded.feedback_id);
    if (!original) wrong.push(`offset ${message.offset}: ${decoded.feedback_id} was never sent`);
    else if (canonical(decoded) !== canonical(original.value)) wrong.push(`offset ${message.offset}: decoded ${JSON.stringify(decoded)}, sent ${JSON.stringify(original.value)}`);
    else decodedPhases.add(original.phase);
  }
  t.deepEqual(wrong.slice(0, 5), [], 'every record carries the original id and decodes to the value it was produced from');
  t.true(decodedPhases.has('before') && decodedPhases.has('after'), `records from before and after the restart decoded (${[...decodedPhases].join(', ')})`);
});
