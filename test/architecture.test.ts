/**
 * The rooms' one-way doors (eslint.config.js, import-x/no-restricted-paths) on synthetic
 * source placed where it would break them, linted by ESLint's Node API with the project's
 * own config (type-aware rules off). Each forbidden import must be reported, each allowed one must lint clean, so
 * a zone that stops matching (a moved folder, a typo) fails here instead of silently
 * letting imports through.
 */
import test from 'ava';
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

const root = fileURLToPath(new URL('..', import.meta.url));
// The synthetic files do not exist, so TypeScript's project service cannot type them; the
// zones need no types (import-x resolves paths itself), so the typed rules are switched off.
const eslint = new ESLint({ cwd: root, overrideConfig: tseslint.configs.disableTypeChecked });
const RULE = 'import-x/no-restricted-paths';

/** The no-restricted-paths messages for a file at `filePath` importing `imports`. */
async function restrictedImports(filePath: string, imports: readonly string[]): Promise<string[]> {
  const code = imports.map((from, i) => `import * as door${i} from '${from}';\n`).join('') + `export const doors = [${imports.map((_, i) => `door${i}`).join(', ')}];\n`;
  const [result] = await eslint.lintText(code, { filePath: `${root}${filePath}` });
  const fatal = result!.messages.filter((message) => message.fatal);
  if (fatal.length > 0) throw new Error(`${filePath} did not parse: ${fatal.map((message) => message.message).join('; ')}`);
  return result!.messages.filter((message) => message.ruleId === RULE).map((message) => message.message);
}

const forbidden: readonly { title: string; file: string; from: string; says: RegExp }[] = [
  { title: 'the orchestrator does not import the CLI', file: 'infra/orchestrator/x.ts', from: '../cli/main.ts', says: /orchestrator \(production\) imports only shared/ },
  { title: 'the orchestrator does not import the local services', file: 'infra/orchestrator/x.ts', from: '../services/local-services.ts', says: /orchestrator \(production\) imports only shared/ },
  { title: 'the orchestrator does not import the platform (nor its file)', file: 'infra/orchestrator/x.ts', from: '../platform/platform-file.ts', says: /orchestrator \(production\) imports only shared/ },
  { title: 'the orchestrator does not import upstream', file: 'infra/orchestrator/x.ts', from: '../../upstream/index.ts', says: /only through processes, Kafka, Redis and their HTTP APIs/ },
  { title: 'the orchestrator does not import downstream', file: 'infra/orchestrator/x.ts', from: '../../downstream/index.ts', says: /only through processes, Kafka, Redis and their HTTP APIs/ },
  { title: 'the launchers do not import the CLI', file: 'infra/platform/x.ts', from: '../cli/control-client.ts', says: /CLI and the demo are leaves/ },
  { title: 'the local services do not import the demo', file: 'infra/services/x.ts', from: '../demo/main.ts', says: /CLI and the demo are leaves/ },
  { title: 'shared/ does not import the CLI', file: 'shared/x.ts', from: '../infra/cli/control-client.ts', says: /CLI and the demo are leaves/ },
  { title: 'shared/ does not import the orchestrator', file: 'shared/x.ts', from: '../infra/orchestrator/state.ts', says: /shared\/ must not depend on infra/ },
  { title: 'upstream does not import downstream', file: 'upstream/x.ts', from: '../downstream/service.ts', says: /meet only through Kafka topics/ },
  { title: 'downstream does not import the control plane', file: 'downstream/x.ts', from: '../infra/orchestrator/state.ts', says: /do not import the control plane/ },
  { title: 'infra imports downstream only through its index', file: 'infra/cli/x.ts', from: '../../downstream/rollout-store.ts', says: /only through downstream\/index\.ts/ },
  { title: 'infra imports upstream only through its index', file: 'infra/demo/x.ts', from: '../../upstream/normalize.ts', says: /only through upstream\/index\.ts/ },
  { title: 'the oracle does not import the code it checks', file: 'infra/dataset/x.ts', from: '../../downstream/index.ts', says: /independent of the code they check/ },
  { title: 'the dataset does not import the demo', file: 'infra/dataset/x.ts', from: '../demo/main.ts', says: /independent of the code they check|CLI and the demo are leaves/ },
  { title: 'production code in infra does not import test support', file: 'infra/orchestrator/x.ts', from: '../../test/support/env.ts', says: /does not import test support/ },
];

for (const { title, file, from, says } of forbidden) {
  test(`forbidden: ${title} (${file} → ${from})`, async (t) => {
    const messages = await restrictedImports(file, [from]);
    t.true(messages.length > 0, 'the import was not reported');
    t.true(messages.some((message) => says.test(message)), messages.join('\n'));
  });
}

const allowed: readonly { title: string; file: string; from: readonly string[] }[] = [
  { title: 'the orchestrator imports shared/ and its own files', file: 'infra/orchestrator/x.ts', from: ['./state.ts', '../../shared/config.ts', '../../shared/process-group.ts'] },
  { title: 'the launchers import shared/ and the orchestrator', file: 'infra/platform/x.ts', from: ['../orchestrator/state.ts', '../services/local-services.ts', '../../shared/runtime-paths.ts', './platform-file.ts'] },
  { title: 'the CLI (a leaf) imports the platform, the orchestrator and the sides through their index', file: 'infra/cli/x.ts', from: ['../platform/platform-file.ts', '../orchestrator/state.ts', '../../downstream/index.ts', '../../upstream/index.ts'] },
  { title: 'a unit test beside the orchestrator may use test support', file: 'infra/orchestrator/x.test.ts', from: ['../../test/support/env.ts'] },
];

for (const { title, file, from } of allowed) {
  test(`allowed: ${title}`, async (t) => {
    t.deepEqual(await restrictedImports(file, from), []);
  });
}
