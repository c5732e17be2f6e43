import test from 'ava';
import { loadConfig } from '../../shared/config.ts';
import { poolKey, poolKeyOf } from './launcher.ts';
import type { Deployment } from './state.ts';

const deployment: Deployment = { usecase: 'a', variant: 'A', folder: '/uc/a', version: 'v', stateful: false, generation: 1, deployedAt: '', settings: {} };

test('spares fit deployments on the platform Python; one with its own environment starts cold', (t) => {
  const config = loadConfig({});
  t.is(poolKeyOf(config, deployment), poolKey(config));
  t.is(poolKeyOf(config, { ...deployment, pythonEnv: '/cache/usecase-env-1234' }), null);
});

test('driver memory and master are part of the key: a spare of another configuration fits nothing', (t) => {
  const config = loadConfig({});
  t.not(poolKey(loadConfig({ DIAMOND_SPARK_DRIVER_MEMORY: '2g' })), poolKey(config));
  t.not(poolKey(loadConfig({ DIAMOND_SPARK_MASTER: 'local[1]' })), poolKey(config));
});

test('DIAMOND_POOL_SIZE: 1 by default, 0 turns the pool off, anything else is refused', (t) => {
  t.is(loadConfig({}).orchestrator.poolSize, 1);
  t.is(loadConfig({ DIAMOND_POOL_SIZE: '0' }).orchestrator.poolSize, 0);
  t.throws(() => loadConfig({ DIAMOND_POOL_SIZE: '-1' }), { message: /DIAMOND_POOL_SIZE/ });
  t.throws(() => loadConfig({ DIAMOND_POOL_SIZE: 'two' }), { message: /DIAMOND_POOL_SIZE/ });
});
