// The cluster suite (`npm run test:cluster`): the end-to-end baseline and the node faults on
// the local clusters (DIAMOND_TOPOLOGY=cluster). A whole diamond per test, one at a time.
export default {
  files: ['test/e2e/baseline.test.ts', 'test/cluster/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  concurrency: 1,
  serial: true,
  timeout: '20m',
  workerThreads: false,
  cache: false,
};
