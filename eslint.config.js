// Lint rules that guard the architecture: no import cycles, no floating promises, the three
// sides of the diamond (upstream, usecases, downstream) never import each other, and the
// rooms of infra/ have one-way doors (docs/ARCHITECTURE.md, "Layout"):
//   orchestrator (production)       → shared/ and its own files only (never a side of the diamond)
//   services + platform (launchers) → shared/, the orchestrator
//   dataset (generator + oracle)    → shared/ and its own files only (its tests may check
//                                     predictions against the sides' real code)
//   cli, demo (leaves)              → anything; nothing imports them
//   infra/ → upstream/ and downstream/ only through their index.ts
// test/architecture.test.ts proves each door both ways.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const sides = ['upstream', 'usecases', 'downstream'];
const leaves = ['./infra/cli', './infra/demo'];

export default tseslint.config(
  { ignores: ['node_modules/**', '.diamond/**', '**/*.py', 'infra/cli/*.js', 'eslint.config.js', 'ava.*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/require-await': 'off',
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', {
        basePath: import.meta.dirname,
        zones: [
          ...sides.flatMap((side) => sides.filter((other) => other !== side).map((other) => ({
            target: `./${side}`, from: `./${other}`, message: 'upstream, usecases and downstream meet only through Kafka topics and shared/',
          }))),
          ...sides.map((side) => ({ target: './shared', from: `./${side}`, message: 'shared/ must not depend on one side of the diamond' })),
          ...sides.map((side) => ({ target: `./${side}`, from: './infra', message: 'the sides do not import the control plane' })),
          { target: './shared', from: './infra', message: 'shared/ must not depend on infra/' },
          {
            target: './infra/orchestrator', from: './infra', except: ['./orchestrator'],
            message: 'the orchestrator (production) imports only shared/ and its own files; what the launchers or the CLI know is injected by its caller',
          },
          { target: './infra/orchestrator', from: ['./upstream', './usecases', './downstream'], message: 'the orchestrator talks to the sides only through processes, Kafka, Redis and their HTTP APIs' },
          {
            target: './infra/dataset/**/!(*.test).ts', from: ['./infra', './upstream', './downstream', './usecases'], except: ['./dataset'],
            message: 'the dataset and its oracle are independent of the code they check: shared/ and their own files only',
          },
          {
            target: ['./infra/orchestrator', './infra/services', './infra/platform', './infra/setup', './shared', ...sides.map((side) => `./${side}`)], from: leaves,
            message: 'the CLI and the demo are leaves: nothing imports them (move what both need to infra/platform or shared/)',
          },
          ...['upstream', 'downstream'].map((side) => ({
            target: './infra', from: `./${side}`, except: ['./index.ts'], message: `infra/ imports ${side}/ only through ${side}/index.ts`,
          })),
          { target: './infra/**/!(*.test).ts', from: './test', message: 'production code does not import test support' },
        ],
      }],
      'no-console': 'error',
    },
  },
  {
    // The dashboard's script runs in a browser, outside the TypeScript project (no build step).
    files: ['infra/orchestrator/ui/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: Object.fromEntries(['document', 'location', 'history', 'sessionStorage', 'fetch', 'setTimeout', 'clearTimeout', 'setInterval', 'Node', 'URLSearchParams', 'TextDecoderStream'].map((name) => [name, 'readonly'])),
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
);
