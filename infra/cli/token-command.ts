/**
 * `diamond token add --role <viewer|runner|deployer|admin> [--name]` and `diamond token revoke
 * <token>`: control API tokens, written to Redis directly (so the first token can be made
 * before any API runs). The token is printed once; Redis keeps only its sha256. `withTokens` is
 * shared with `diamond ui`, which mints the dashboard's token the same way.
 */
import type { Argv, CommandModule } from 'yargs';
import { loadConfig, parseDurationMs, type DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { createRedis, redisUnavailable } from '../../shared/redis.ts';
import { defaultOrchestratorOptions } from '../orchestrator/options.ts';
import { ROLES, TokenStore, type Role } from '../../shared/operator-tokens.ts';
import { jsonOption, printResult } from './output.ts';

export async function withTokens<T>(config: DiamondConfig, use: (tokens: TokenStore) => Promise<T>): Promise<T> {
  const redis = createRedis(config, { keyPrefix: defaultOrchestratorOptions(config).keyPrefix });
  redis.on('error', () => undefined); // reported by the failing call below
  try {
    await redis.connect().catch((cause: unknown) => {
      throw redisUnavailable(config, cause);
    });
    return await use(new TokenStore(redis));
  } finally {
    redis.disconnect();
  }
}

const tokenAdd: CommandModule<object, { role: string; name: string | undefined; expires: string | undefined; json: boolean }> = {
  command: 'add',
  describe: 'create a control API token with a role; printed once (only its sha256 is stored)',
  builder: (y) => y
    .option('role', { type: 'string', choices: ROLES, demandOption: true, describe: 'viewer reads, runner also runs functions (diamond run), deployer also deploys, admin also creates tokens' })
    .option('name', { type: 'string', describe: 'a label for the token, shown in the orchestrator log (default: the role)' })
    .option('expires', { type: 'string', describe: 'refuse the token after this long, e.g. 12h or 30d (default: no expiry)' })
    .option('json', jsonOption),
  handler: async ({ role, name, expires, json }) => {
    const config = loadConfig(process.env);
    const expiresAt = expires === undefined ? undefined : new Date(Date.now() + parseDurationMs('--expires', expires));
    const token = await withTokens(config, (tokens) => tokens.add(role as Role, name ?? role, { expiresAt }));
    printResult(json, { token, role, name: name ?? role, expiresAt: expiresAt?.toISOString() ?? null }, token);
    if (!json) process.stderr.write(`${role} token "${name ?? role}" created${expiresAt ? `, valid until ${expiresAt.toISOString()}` : ''}; it is not shown again (use it as DIAMOND_TOKEN or Authorization: Bearer <token>)\n`);
  },
};

const tokenRevoke: CommandModule<object, { token: string; json: boolean }> = {
  command: 'revoke <token>',
  describe: 'revoke a control API token: the token itself (dmd_…), or its name or id as `token list` shows them',
  builder: (y) => y.positional('token', { type: 'string', demandOption: true, describe: 'dmd_… token, token name, or 12-character id' }).option('json', jsonOption),
  handler: async ({ token, json }) => {
    const config = loadConfig(process.env);
    const revoked = await withTokens(config, async (tokens) => {
      if (token.startsWith('dmd_')) return (await tokens.revoke(token)) ? [{ token: 'given' }] : [];
      return (await tokens.revokeNamed(token)).map((grant) => ({ id: grant.id, name: grant.name, role: grant.role }));
    });
    if (revoked.length === 0) {
      throw new DiamondError(`no token is ${token.startsWith('dmd_') ? 'that one' : `named or with id "${token}"`}`, { code: 'DIAMOND_TOKEN_UNKNOWN', hint: 'it was revoked already, or belongs to another Redis; `npx diamond token list` shows names and ids' });
    }
    printResult(json, { revoked: true, tokens: revoked }, `revoked ${revoked.length} token(s)`);
  },
};

const tokenList: CommandModule<object, { json: boolean }> = {
  command: 'list',
  describe: 'the control API tokens: id, name, role, created, expiry (never the token)',
  builder: (y) => y.option('json', jsonOption),
  handler: async ({ json }) => {
    const config = loadConfig(process.env);
    const grants = await withTokens(config, (tokens) => tokens.list());
    const text = grants.length === 0 ? 'no tokens (create one with `npx diamond token add --role viewer`)'
      : grants.map((g) => `${g.id}  ${g.role.padEnd(8)} ${g.name.padEnd(24)} created ${g.createdAt}${g.expiresAt ? `  expires ${g.expiresAt}` : ''}`).join('\n');
    printResult(json, { tokens: grants }, text);
  },
};

export const tokenCommand: CommandModule = {
  command: 'token <command>',
  describe: 'bearer tokens of the orchestrator control API',
  builder: (y: Argv) => y.command(tokenAdd).command(tokenList).command(tokenRevoke).demandCommand(1),
  handler: () => undefined,
};
