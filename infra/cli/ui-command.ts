/**
 * `diamond ui [--role viewer|runner|deployer|admin] [--expires 12h] [--open] [--json]`: the dashboard's
 * address, signed in. It mints a token of its own (named `dashboard-<role>`, stored only as its
 * sha256 like every token; `diamond token revoke dashboard-viewer` ends it) and puts it in the
 * URL fragment, which browsers never send to the server, so it reaches no log.
 */
import { spawn } from 'node:child_process';
import type { CommandModule } from 'yargs';
import { loadConfig, parseDurationMs } from '../../shared/config.ts';
import { ROLES, type Role } from '../../shared/operator-tokens.ts';
import { dashboardLink } from '../orchestrator/dashboard-link.ts';
import { platformEndpoints } from '../platform/platform-file.ts';
import { jsonOption, printResult } from './output.ts';
import { withTokens } from './token-command.ts';

/** Hands the URL to the desktop's browser; false when there is none (a server, a container). */
function openInBrowser(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

export const uiCommand: CommandModule<object, { role: string; expires: string; open: boolean; json: boolean }> = {
  command: 'ui',
  describe: 'print the dashboard\'s URL, signed in with a new token in its #fragment (never sent to the server)',
  builder: (y) => y
    .option('role', { type: 'string', choices: ROLES, default: 'viewer', describe: 'viewer reads; deployer also changes rollout weights, promotes and rolls back' })
    .option('expires', { type: 'string', default: '12h', describe: 'the token is refused after this long, e.g. 30m, 12h, 7d' })
    .option('open', { type: 'boolean', default: false, describe: 'also open it in the desktop browser (xdg-open)' })
    .option('json', jsonOption)
    .example('$0 ui', 'a read-only dashboard link for 12 hours')
    .example('$0 ui --role deployer --open', 'with the rollout controls, opened in the browser'),
  handler: async ({ role, expires, open, json }) => {
    const config = loadConfig(process.env);
    const expiresAt = new Date(Date.now() + parseDurationMs('--expires', expires));
    const controlUrl = config.control.url || platformEndpoints(config).controlUrl;
    const link = await withTokens(config, (tokens) => dashboardLink(tokens, controlUrl, { role: role as Role, expiresAt }));
    const opened = open ? await openInBrowser(link.url) : false;
    printResult(json, { ...link, opened }, link.url);
    if (!json) {
      process.stderr.write(`${link.role} token "${link.name}" until ${link.expiresAt}; the link signs in whoever opens it (\`npx diamond token revoke ${link.name}\` ends it)\n`);
      if (open && !opened) process.stderr.write('no desktop browser to open it (xdg-open is missing): open the link yourself\n');
    }
  },
};
