/**
 * A job's log over HTTP: the last N lines (read backwards from the end, so a long-running
 * job's large log is not read whole), then, when following, the bytes appended to it —
 * and when the job was restarted meanwhile, its new process's log.
 */
import { open, stat } from 'node:fs/promises';

const CHUNK = 64 * 1024;
/** Most a tail reads, however many lines were asked for. */
const MAX_TAIL_BYTES = 16 * 1024 * 1024;
/** Most one follow poll sends; the rest goes on the next poll. */
const MAX_POLL_BYTES = 1024 * 1024;

/** The last `lines` lines of `file` and the size they end at. */
export async function tailLines(file: string, lines: number): Promise<{ text: string; size: number }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (lines <= 0 || size === 0) return { text: '', size };
    const chunks: Buffer[] = [];
    let start = size;
    let newlines = 0;
    // lines + 1 newlines: the file's own trailing newline does not start a line.
    while (start > 0 && newlines <= lines && size - start < MAX_TAIL_BYTES) {
      const from = Math.max(0, start - CHUNK);
      const buffer = Buffer.alloc(start - from);
      await handle.read(buffer, 0, buffer.length, from);
      chunks.unshift(buffer);
      for (const byte of buffer) if (byte === 0x0a) newlines++;
      start = from;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const endsWithNewline = text.endsWith('\n');
    const kept = (endsWithNewline ? text.slice(0, -1) : text).split('\n').slice(-lines).join('\n');
    return { text: kept + (endsWithNewline ? '\n' : ''), size };
  } finally {
    await handle.close();
  }
}

async function readRange(file: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, from);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export interface LogFollower {
  stop(): void;
}

/**
 * Polls `file` from `position` and hands appended bytes to `write`. Every few polls without
 * new bytes it asks `latestFile()`; a different file (the job's next process) is followed
 * from its start, after a line saying so.
 */
export function followLog(file: string, position: number, options: { write: (chunk: Buffer | string) => void; latestFile: () => Promise<string | null>; intervalMs?: number }): LogFollower {
  let current = file;
  let offset = position;
  let idlePolls = 0;
  let busy = false;
  const poll = async (): Promise<void> => {
    const info = await stat(current).catch(() => null);
    if (info && info.size < offset) offset = 0; // truncated: start over
    if (info && info.size > offset) {
      const chunk = await readRange(current, offset, Math.min(info.size, offset + MAX_POLL_BYTES));
      offset += chunk.length;
      idlePolls = 0;
      options.write(chunk);
      return;
    }
    if (++idlePolls % 4 !== 0) return;
    const latest = await options.latestFile();
    if (latest && latest !== current && (await stat(latest).catch(() => null))) {
      options.write(`\n--- the job has a new process; following ${latest} ---\n`);
      current = latest;
      offset = 0;
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    poll().catch(() => undefined).finally(() => { busy = false; });
  }, options.intervalMs ?? 500);
  return { stop: () => clearInterval(timer) };
}
