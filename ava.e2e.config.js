// End-to-end tests: a whole diamond per test (ingest, three Spark jobs, the writer), so one
// file at a time, tests serial. The file that restarts Kafka and Cassandra runs last.
const last = (file) => (file.includes('service-restarts') ? 1 : 0);

export default {
  files: ['test/e2e/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  concurrency: 1,
  serial: true,
  timeout: '15m', // a whole diamond per test: Spark starts, a stream, the faults' recovery
  workerThreads: false,
  // The order above must hold; AVA would otherwise run previously failing files first.
  cache: false,
  sortTestFiles: (a, b) => last(a) - last(b) || a.localeCompare(b),
};
