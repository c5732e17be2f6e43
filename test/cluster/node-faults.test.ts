/**
 * The whole diamond on the local clusters (DIAMOND_TOPOLOGY=cluster: three Kafka brokers,
 * a three-node Cassandra ring, a Spark master with two workers; `npm run test:cluster`),
 * with one node of each killed with SIGKILL while records stream through it: a Kafka broker,
 * a Cassandra node, then a Spark worker. Each kill is shown to hit data in flight (the stream
 * still sending) and to have had its effect (the broker fenced out of the cluster, the node's
 * CQL port closed, the master counting one worker), and the diamond is shown to go on
 * through it (rows written while the node is down). Then every node is brought back and
 * rejoins, and the end state is exact: every expected row once, no job restarted.
 */
import test, { type ExecutionContext } from 'ava';
import '../support/exit-when-done.ts';
import { connect } from 'node:net';
import { servicesUp } from '../../infra/services/local-services.ts';
import { servicePaths } from '../../infra/services/service.ts';
import { standaloneState } from '../../infra/services/spark.ts';
import { parseHostPort } from '../../shared/config.ts';
import { checkKafka } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { isAlive, readPidRecord } from '../../shared/process-group.ts';
import { assertSending, assertUntouched, deployExamples, e2eDataset, jobSnapshot, startDiamond, waitForSent, type Diamond, type Stream } from '../support/e2e.ts';
import { config, until } from '../support/env.ts';

const logger = createLogger({ logLevel: 'silent' });

if (config.topology !== 'cluster') {
  throw new Error('test/cluster needs the cluster topology: run `npm run test:cluster` (DIAMOND_TOPOLOGY=cluster)');
}

/** SIGKILL to the node's process group, as a machine losing power would; resolves once it is gone. */
async function killNode(node: string): Promise<number> {
  const record = readPidRecord(servicePaths(config, node).pidFile);
  if (!record || !isAlive(record.pid)) throw new Error(`${node} is not running`);
  process.kill(-record.pid, 'SIGKILL');
  await until(`${node} (pid ${record.pid}) to die`, () => (isAlive(record.pid) ? null : true), 10_000);
  return record.pid;
}

function portOpen(address: string): Promise<boolean> {
  const { host, port } = parseHostPort('address', address);
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Rows written so far. Right after a Cassandra node dies the others have not convicted it yet
 * (gossip takes seconds), so a read may still pick it as a replica and time out: the test's own
 * count retries, as the writer does.
 */
function rowsNow(d: Diamond): Promise<number> {
  return until('a count of the rows written', () => d.rowsWritten().catch(() => null), 60_000);
}

/** While the node is down the diamond goes on: records sent after the kill reach Cassandra. */
async function goesOn(t: ExecutionContext, d: Diamond, stream: Stream, what: string): Promise<void> {
  assertSending(t, stream);
  const sentAt = stream.sent();
  const rowsAt = await rowsNow(d);
  let rows = rowsAt;
  await until(`rows written with ${what} down`, async () => {
    rows = await rowsNow(d);
    return stream.sent() > sentAt + 2 && rows > rowsAt ? true : null;
  }, 240_000);
  t.log(`${what} down: requests ${sentAt} → ${stream.sent()} acknowledged, rows ${rowsAt} → ${rows}`);
}

test.serial('kill -9 a Kafka broker, a Cassandra node and a Spark worker mid-stream: the jobs go on, the nodes rejoin, every expected row exactly once', async (t) => {
  // Whatever happens, the clusters are whole again for whoever runs next.
  t.teardown(() => servicesUp(config, logger).then(() => undefined));
  const d = await startDiamond(t, 'cluster-faults');
  const jobs = await deployExamples(d);
  const before = await jobSnapshot(d, Object.values(jobs));
  // Slow enough that the three faults and their effects fit inside the stream.
  const stream = d.stream(e2eDataset(), 700);
  await waitForSent(stream, 0.15);

  // A broker: the controller fences it; partitions it led move to the two in-sync replicas left.
  await killNode('kafka-2');
  await until('the cluster to fence the dead broker', async () => ((await checkKafka(config).catch(() => ({ brokers: 3 }))).brokers === 2 ? true : null), 60_000);
  t.pass('kafka-2 killed; the cluster counts 2 brokers');
  await goesOn(t, d, stream, 'a Kafka broker');

  // A Cassandra node: LOCAL_QUORUM is 2 of 3 replicas, so writes and reads go on.
  const victim = config.cassandra.contactPoints[2] ?? '';
  await killNode('cassandra-3');
  // The killed JVM's leader is gone before its last thread is: its sockets close a moment later.
  await until(`cassandra-3's CQL port ${victim} to close`, async () => ((await portOpen(victim)) ? null : true), 30_000);
  t.pass(`cassandra-3 killed; its CQL port ${victim} is closed`);
  await goesOn(t, d, stream, 'a Cassandra node');

  // A Spark worker: the executors on it are lost; the master gives those applications new ones on the other.
  await killNode('spark-worker-1');
  await until('the master to count one worker', async () => ((await standaloneState(config)).aliveworkers === 1 ? true : null), 60_000);
  t.pass('spark-worker-1 killed; the master counts 1 worker');
  await goesOn(t, d, stream, 'a Spark worker');

  // Every node back: each rejoins its cluster.
  const back = await servicesUp(config, logger);
  t.deepEqual(back.filter((r) => r.outcome === 'started').map((r) => r.name).sort(), ['cassandra', 'kafka', 'spark'], 'the three services had a node to start again');
  t.is((await checkKafka(config)).brokers, 3, 'kafka-2 rejoined');
  t.true(await portOpen(victim), 'cassandra-3 serves again');
  await until('the worker to register again', async () => ((await standaloneState(config)).aliveworkers === config.spark.workers.count ? true : null), 60_000);

  // A request in flight when the broker died may time out, be sent again and land twice on
  // records.normalized (as in e2e/kafka-outage): the same record ids, so the same feedback rows.
  await d.settle(t, stream, { jobs: Object.values(jobs), duplicatesAllowed: true, timeoutMs: 600_000 });
  await assertUntouched(t, d, before);
});
