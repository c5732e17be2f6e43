/**
 * The history archiver under the orchestrator, on the real services and Spark: an isolated
 * orchestrator with the archiver on (its own topics, subjects, Redis prefix, history and
 * archiver folders) copies the records produced to its input topic into Parquet exactly once;
 * kill -9 of the archiver's process group gets it restarted (a new process, the old one gone),
 * and the records sent around the kill are in the history once each.
 *
 * The history is read the way Spark reads it: only the files the sink's `_spark_metadata` log
 * committed (a killed batch may leave files it never committed), with pyarrow (no Spark start).
 */
import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProcesses, signalAll } from '../../shared/process-group.ts';
import type { HistoryArchive } from '../../infra/orchestrator/history-archive.ts';
import { until } from '../support/env.ts';
import { runPython } from '../support/python.ts';
import { customerRecord, startTestOrchestrator, type TestOrchestrator } from '../support/orchestrator.ts';

const DAY = 86_400_000;
const work = mkdtempSync(join(tmpdir(), 'diamond-history-test-'));
const historyDir = join(work, 'history');
const archiveDir = join(work, 'archive');
let orchestrator: TestOrchestrator | undefined;

/** record_id of every row in the committed files of <history>/records (JSON list on stdout). */
const READ_COMMITTED = `
import json, os, sys
from urllib.parse import unquote, urlparse
import pyarrow.parquet as pq
table = os.path.join(sys.argv[1], "records")
log = os.path.join(table, "_spark_metadata")
files = set()
if os.path.isdir(log):
    for name in sorted(os.listdir(log), key=lambda n: int(n.split(".")[0]) if n.split(".")[0].isdigit() else -1):
        if not name.split(".")[0].isdigit():
            continue
        with open(os.path.join(log, name)) as f:
            for line in f.read().splitlines()[1:]:
                entry = json.loads(line)
                path = unquote(urlparse(entry["path"]).path)
                (files.discard if entry.get("action") == "delete" else files.add)(path)
ids = []
for path in sorted(files):
    if os.path.exists(path):
        ids.extend(pq.read_table(path, columns=["record_id"]).column("record_id").to_pylist())
print(json.dumps(ids))
`;

async function committedIds(): Promise<string[]> {
  const result = await runPython(['-c', READ_COMMITTED, historyDir]);
  if (result.code !== 0) throw new Error(`reading the history failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}


/** Waits until the history holds `expected` (sorted), then fails on anything else (a duplicate, a stray). */
async function historyHolds(expected: readonly string[], timeoutMs: number): Promise<string[]> {
  const want = [...expected].sort();
  let last: string[] = [];
  try {
    return await until(`the history holding ${want.length} records`, async () => {
      last = (await committedIds()).sort();
      return new Set(last).size >= new Set(want).size && want.every((id) => last.includes(id)) ? last : null;
    }, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}; it holds ${last.length}: ${last.join(',')}`, { cause: error });
  }
}

test.after.always(async () => {
  await orchestrator?.teardown();
  // Whatever of an archiver a failed test left (the teardown stops the one it supervises).
  const left = findProcesses(new RegExp(`${archiveDir}/ha-`));
  signalAll(left.map((p) => p.pgid), left.map((p) => p.pid), 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

test('the orchestrator runs the history archiver: records land in Parquet exactly once, also around a kill -9 of it', async (t) => {
  orchestrator = await startTestOrchestrator('history', {
    DIAMOND_HISTORY_ARCHIVE: '1', DIAMOND_HISTORY_DIR: historyDir, DIAMOND_HISTORY_TRIGGER: '1s', DIAMOND_HISTORY_RETENTION: '7d',
  }, { historyArchiveDir: archiveDir });
  const archive: HistoryArchive = orchestrator.reconciler.historyArchive!;
  t.truthy(archive, 'the archiver is on for this orchestrator');
  const now = Date.now();
  const batch = (name: string, count: number): ReturnType<typeof customerRecord>[] => Array.from({ length: count }, (_, i) =>
    customerRecord(`${name}-${i}`, `c-${i % 3}`, { event_time: now - (i % 3) * DAY, ingested_at: now }));

  const first = batch('a', 12);
  await orchestrator.produce(first);
  const running = await until('the archiver running', () => (archive.status.state === 'running' ? archive.status : null), 30_000);
  t.deepEqual(await historyHolds(first.map((r) => r.record_id), 120_000), first.map((r) => r.record_id).sort(), 'exactly the records produced');

  // Records in flight, then kill -9 of the whole group, as a machine loses a process.
  const second = batch('b', 8);
  await orchestrator.produce(second);
  const oldPid = running.pid!;
  process.kill(-oldPid, 'SIGKILL');
  const restarted = await until('the archiver restarted', () => {
    const status = archive.status;
    return status.state === 'running' && status.pid !== null && status.pid !== oldPid ? status : null;
  }, 30_000);
  t.is(restarted.restarts, 1);
  t.true(existsSync(`/proc/${restarted.pid!}`), 'the new archiver runs');
  t.false(findProcesses(new RegExp(`${archiveDir}/ha-`)).some((p) => p.pgid === oldPid), 'nothing of the old one is left');
  // What /v1/status shows: the leader stores it in Redis.
  const stored = await until('the stored status naming the new archiver', async () => {
    const status = await orchestrator!.reconciler.store.historyArchiveStatus();
    return status?.pid === restarted.pid ? status : null;
  }, 10_000);
  t.like(stored, { state: 'running', restarts: 1 });

  const third = batch('c', 8);
  await orchestrator.produce(third);
  const all = [...first, ...second, ...third].map((r) => r.record_id).sort();
  t.deepEqual(await historyHolds(all, 120_000), all, 'every record once: none lost around the kill, none twice');
  await new Promise((resolve) => setTimeout(resolve, 3000)); // a few more triggers: still once each
  t.deepEqual((await committedIds()).sort(), all);
});
