/**
 * `diamond source revoke|rotate <name>` and `diamond customer revoke|rotate <id>`: a leaked
 * key is revoked (it stops working) or rotated (a new one replaces it), without touching the
 * source's mapping or the customer's feedback. Each takes --json for scripts.
 */
import type { CommandModule } from 'yargs';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { createRedis, redisUnavailable } from '../../shared/redis.ts';
import { SourceStore, UPSTREAM_KEY_PREFIX } from '../../upstream/index.ts';
import { CustomerKeys } from '../../downstream/index.ts';
import { printResult as print } from './output.ts';

type Args<T> = T & { json: boolean };

async function withRedis<T>(config: DiamondConfig, keyPrefix: string | undefined, use: (redis: ReturnType<typeof createRedis>) => Promise<T>): Promise<T> {
  const redis = createRedis(config, { keyPrefix });
  redis.on('error', () => undefined); // reported by connect() below
  try {
    await redis.connect().catch((cause: unknown) => {
      throw redisUnavailable(config, cause);
    });
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}


export const sourceRevoke: CommandModule<object, Args<{ name: string }>> = {
  command: 'revoke <name>',
  describe: "revoke a source's API key (its records are refused within 5 s; the mapping is kept for `source rotate`)",
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
  handler: async ({ name, json }) => {
    const config = loadConfig(process.env);
    const revoked = await withRedis(config, UPSTREAM_KEY_PREFIX, (redis) => new SourceStore(redis).revoke(name));
    print(json, { source: name, revoked }, revoked ? `source "${name}": key revoked` : `source "${name}" had no key`);
  },
};

export const sourceRotate: CommandModule<object, Args<{ name: string }>> = {
  command: 'rotate <name>',
  describe: "give a source a new API key, its mapping kept; the old key stops working (shown once)",
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
  handler: async ({ name, json }) => {
    const config = loadConfig(process.env);
    const { apiKey } = await withRedis(config, UPSTREAM_KEY_PREFIX, (redis) => new SourceStore(redis).rotate(name));
    print(json, { source: name, apiKey }, `source "${name}" has a new key (shown only now, stored hashed):\n\n  ${apiKey}\n`);
  },
};

export const customerRevoke: CommandModule<object, Args<{ id: string }>> = {
  command: 'revoke <id>',
  describe: "revoke every API key of a customer (the feedback API answers 401 at once)",
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
  handler: async ({ id, json }) => {
    const config = loadConfig(process.env);
    const revoked = await withRedis(config, undefined, (redis) => new CustomerKeys(redis).revokeAll(id));
    print(json, { customer: id, revoked }, `customer ${id}: ${revoked} key(s) revoked`);
  },
};

export const customerRotate: CommandModule<object, Args<{ id: string }>> = {
  command: 'rotate <id>',
  describe: 'replace every API key of a customer with one new key (shown once)',
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
  handler: async ({ id, json }) => {
    const config = loadConfig(process.env);
    const { key, revoked } = await withRedis(config, undefined, (redis) => new CustomerKeys(redis).rotate(id));
    print(json, { customer: id, apiKey: key, revoked }, `customer ${id}: ${revoked} old key(s) revoked; new key (shown only now, stored hashed):\n\n  ${key}\n`);
  },
};

export const sourceList: CommandModule<object, Args<object>> = {
  command: 'list',
  describe: 'the sources, whether each has a key, and when it was created (keys are never shown again)',
  builder: (y) => y.option('json', { type: 'boolean', default: false }),
  handler: async ({ json }) => {
    const config = loadConfig(process.env);
    const sources = await withRedis(config, UPSTREAM_KEY_PREFIX, (redis) => new SourceStore(redis).list());
    const text = sources.length === 0 ? 'no sources (add one with `npx diamond source add <name>`)' : sources.map((s) => `${s.name.padEnd(24)} ${s.hasKey ? 'key      ' : 'no key   '} created ${s.createdAt ?? '?'}`).join('\n');
    print(json, { sources }, text);
  },
};

export const customerList: CommandModule<object, Args<object>> = {
  command: 'list',
  describe: 'the customers with API keys, and how many each has (keys are never shown again)',
  builder: (y) => y.option('json', { type: 'boolean', default: false }),
  handler: async ({ json }) => {
    const config = loadConfig(process.env);
    const customers = await withRedis(config, undefined, (redis) => new CustomerKeys(redis).list());
    const text = customers.length === 0 ? 'no customer has a key (add one with `npx diamond customer add <id>`)' : customers.map((c) => `${c.customer.padEnd(32)} ${c.keys} key(s)`).join('\n');
    print(json, { customers }, text);
  },
};
