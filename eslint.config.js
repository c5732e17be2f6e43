// Lint rules that guard the architecture: no import cycles, no floating promises, and the
// three sides of the diamond (upstream, usecases, downstream) never import each other.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const sides = ['upstream', 'usecases', 'downstream'];

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
        zones: [
          ...sides.flatMap((side) => sides.filter((other) => other !== side).map((other) => ({
            target: `./${side}`, from: `./${other}`, message: 'upstream, usecases and downstream meet only through Kafka topics and shared/',
          }))),
          ...sides.map((side) => ({ target: './shared', from: `./${side}`, message: 'shared/ must not depend on one side of the diamond' })),
          ...sides.map((side) => ({ target: `./${side}`, from: './infra', message: 'the sides do not import the control plane' })),
        ],
      }],
      'no-console': 'error',
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
);
