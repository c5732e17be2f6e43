// Tests that start Spark jobs: each uses most of a core, so on 2 cores they run one file
// at a time, after the lighter suite (package.json "ava") and before the durability suite.
export default {
  files: [
    'test/python.test.ts',
    'test/sdk-install.test.ts',
    'test/integration/spark.test.ts',
    'test/integration/usecase-*.test.ts',
    'test/integration/orchestrator-*.test.ts',
  ],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  concurrency: 1,
  timeout: '10m',
  workerThreads: false,
};
