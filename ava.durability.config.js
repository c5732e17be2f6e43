// Tests that restart shared services: run alone, one at a time, after the main suite.
export default {
  files: ['test/durability/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  concurrency: 1,
  serial: true,
  timeout: '5m',
  workerThreads: false,
};
