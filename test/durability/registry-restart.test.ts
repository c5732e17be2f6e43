/**
 * Schema ids survive a registry restart (kafkasql storage). It restarts a shared service,
 * so it runs alone, after the main suite (see ava.durability.config.js).
 */
import test from 'ava';
import '../support/exit-when-done.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRegistry, registerContract } from '../../shared/registry.ts';
import { servicesDown, servicesUp } from '../../infra/services/local-services.ts';
import { config, uniqueName } from '../support/env.ts';

test('a schema keeps its id across a registry restart', async (t) => {
  const subject = uniqueName('test-durable-value');
  const id = await registerContract(createRegistry(config), 'Feedback', subject);

  const [down] = await servicesDown(config, { only: ['registry'] });
  t.true(down?.stopped, 'the registry this checkout started was stopped');
  const [up] = await servicesUp(config, createLogger({ logLevel: 'warn' }, { fd: 2 }), { only: ['registry'] });
  t.is(up?.outcome, 'started');

  const registry = createRegistry(config);
  t.is(await registry.getLatestSchemaId(subject), id);
  t.is(await registerContract(registry, 'Feedback', subject), id, 'registering the same schema again returns the old id');
  const fetched = await registry.getSchema(id);
  t.truthy(fetched);
});
