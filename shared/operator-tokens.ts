/**
 * Bearer tokens of operators (the control API, and downstream's A/B report). A token is
 * shown once when created; Redis keeps only its sha256, with the role it grants, in the hash
 * `tokens` under the orchestrator's key prefix. Roles are ordered: a runner may do what a viewer
 * may, a deployer what a runner may, an admin what a deployer may.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** viewer reads; runner also runs functions (POST /v1/runs); deployer also deploys; admin also creates tokens. */
export const ROLES = ['viewer', 'runner', 'deployer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenGrant {
  readonly role: Role;
  readonly name: string;
  readonly createdAt: string;
  /** ISO time after which the token is refused; absent = no expiry. */
  readonly expiresAt?: string;
  /** A short, stable id of the token (a prefix of its sha256): what streams are counted by. */
  readonly id: string;
}

const TOKENS = 'tokens';

/**
 * The key prefix the tokens live under in production (the orchestrator's, see
 * `defaultOrchestratorOptions`); tests pass their own.
 */
export const OPERATOR_KEY_PREFIX = 'diamond:orchestrator:';

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** True when `granted` is at least `required`. */
export function roleAllows(granted: Role, required: Role): boolean {
  return ROLES.indexOf(granted) >= ROLES.indexOf(required);
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A stored entry (sha256 → JSON) as a grant, its id a prefix of the hash. */
function grantOf(hash: string, raw: string): TokenGrant {
  return { ...(JSON.parse(raw) as Omit<TokenGrant, 'id'>), id: hash.slice(0, 12) };
}

export class TokenStore {
  /** `redis` should carry the orchestrator's key prefix (tests use a unique one). */
  constructor(private readonly redis: Redis) {}

  /** Creates a token; the caller shows it once, it cannot be read back. */
  async add(role: Role, name: string = role, options: { expiresAt?: Date } = {}): Promise<string> {
    const token = `dmd_${randomBytes(24).toString('base64url')}`;
    const stored: Omit<TokenGrant, 'id'> = { role, name, createdAt: new Date().toISOString(), ...(options.expiresAt ? { expiresAt: options.expiresAt.toISOString() } : {}) };
    await this.redis.hset(TOKENS, digest(token), JSON.stringify(stored));
    return token;
  }

  /** The token's grant, or null for an unknown, revoked or expired token (an expired one is deleted). */
  async verify(token: string, now: Date = new Date()): Promise<TokenGrant | null> {
    if (!token) return null;
    const hash = digest(token);
    const raw = await this.redis.hget(TOKENS, hash);
    if (!raw) return null;
    const grant = grantOf(hash, raw);
    if (grant.expiresAt !== undefined && Date.parse(grant.expiresAt) <= now.getTime()) {
      await this.redis.hdel(TOKENS, hash);
      return null;
    }
    return grant;
  }

  async revoke(token: string): Promise<boolean> {
    return (await this.redis.hdel(TOKENS, digest(token))) > 0;
  }

  /** Every token's grant (never the token: only its short id), oldest first. */
  async list(): Promise<TokenGrant[]> {
    const all = await this.redis.hgetall(TOKENS);
    return Object.entries(all).map(([hash, raw]) => grantOf(hash, raw)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Revokes the tokens whose name or id is `nameOrId` (the plaintext is not needed: it was
   * shown once). Returns the grants revoked.
   */
  async revokeNamed(nameOrId: string): Promise<TokenGrant[]> {
    const all = await this.redis.hgetall(TOKENS);
    const hit = Object.entries(all).filter(([hash, raw]) => {
      const grant = grantOf(hash, raw);
      return grant.id === nameOrId || grant.name === nameOrId;
    });
    if (hit.length > 0) await this.redis.hdel(TOKENS, ...hit.map(([hash]) => hash));
    return hit.map(([hash, raw]) => grantOf(hash, raw));
  }
}
