/**
 * For tests that restart a server under live clients: the cassandra-driver can keep a
 * reconnection timer alive after a node restart, which stops the worker from exiting.
 * AVA's documented remedy: exit once AVA is done with this worker (runs only after every
 * test and teardown finished without uncaught errors).
 */
import { registerCompletionHandler } from 'ava';

registerCompletionHandler(() => {
  process.exit(0);
});
