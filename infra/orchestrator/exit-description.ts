/**
 * How a job's end reads in `last error` and the `failed` event: a signal by its name and
 * when it was seen, an exit code with what the job reported, never a log tail passed off as
 * the cause of a kill (a killed JVM's last lines are whatever it was logging, often WARNs).
 */
import { constants } from 'node:os';

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));

export interface JobEnd {
  /** spark-submit's status as its wrapper shell wrote it; null when the wrapper itself is gone. */
  readonly exitCode: number | null;
  /** The group leader's pid, named when there is no status. */
  readonly groupPid: number | null;
  /** What the job reported (its failure message) or, for a plain exit, its last error line. */
  readonly cause: string;
  /** When the orchestrator saw the process gone. */
  readonly seenAt: number;
}

export function describeJobEnd(end: JobEnd): string {
  const at = new Date(end.seenAt).toISOString();
  if (end.exitCode === null) {
    return `killed: process group ${end.groupPid ?? '?'} is gone without an exit status (its leader was killed, e.g. kill -9 of the pid \`diamond status\` shows), seen at ${at}`;
  }
  // A shell reports a child killed by signal N as 128 + N.
  const signal = end.exitCode > 128 ? SIGNAL_NAMES.get(end.exitCode - 128) : undefined;
  if (signal) return `killed by ${signal} (exit code ${end.exitCode}), seen at ${at}${signal === 'SIGKILL' ? ' — by the kernel\'s OOM killer or a kill -9' : ''}`;
  return `exited with code ${end.exitCode}: ${end.cause}`;
}
