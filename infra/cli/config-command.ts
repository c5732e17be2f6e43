/**
 * `diamond config [--json]`: the resolved configuration and where each value comes from.
 * Secrets never appear: tokens are shown as set/unset, passwords inside URLs are masked and
 * alert webhooks are shown by their origin,
 * so the output can be pasted into an issue.
 */
import type { CommandModule } from 'yargs';
import { loadConfig, settingDocs } from '../../shared/config.ts';

const SECRET_SETTINGS = new Set(['DIAMOND_TOKEN']);
const MASK = '***';
/** Keys of the config object that hold a secret (the Redis password parsed out of its URL, the CLI's token). */
const SECRET_KEYS = new Set(['token', 'password']);

/** `redis://user:pw@host` → `redis://user:***@host`; other text unchanged. */
export function maskUrlPassword(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@/\s]+@/i, `$1:${MASK}@`);
}

/**
 * A webhook's secret is often its path or query (Slack's `/services/T/B/XYZ`, `?token=`):
 * only its origin is shown, `https://hooks.example.com/***`.
 */
export function maskWebhook(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.pathname === '/' && parsed.search === '' && !parsed.username && !parsed.password ? parsed.origin : `${parsed.origin}/${MASK}`;
  } catch {
    return MASK;
  }
}

export function shownValue(env: string, value: string): string {
  if (SECRET_SETTINGS.has(env)) return value === '' ? '' : `${MASK} (set)`;
  if (env === 'DIAMOND_ALERT_WEBHOOKS') return value.split(',').map((item) => item.trim()).filter(Boolean).map(maskWebhook).join(',');
  return maskUrlPassword(value);
}

/** The config object with every string that could carry a secret masked. */
export function redactConfig(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return SECRET_KEYS.has(key) ? (value === '' ? '' : MASK) : maskUrlPassword(value);
  if (Array.isArray(value)) return value.map((item) => (key === 'webhooks' && typeof item === 'string' ? maskWebhook(item) : redactConfig(item)));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, redactConfig(item, name)]));
  return value;
}

export const configCommand: CommandModule<object, { json: boolean }> = {
  command: 'config',
  describe: 'print the resolved configuration and its DIAMOND_* variables (secrets masked)',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
  handler: ({ json }) => {
    const config = loadConfig(process.env);
    if (json) {
      process.stdout.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      return;
    }
    for (const doc of settingDocs(process.env)) {
      const given = process.env[doc.env];
      const value = given === undefined ? `${shownValue(doc.env, doc.default)} (default)` : shownValue(doc.env, given);
      process.stdout.write(`${doc.env.padEnd(34)} ${value}\n${''.padEnd(34)} ${doc.description}\n`);
    }
  },
};
