import test from 'ava';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followLog, tailLines } from './log-tail.ts';

const tempFile = (name: string, text: string): string => {
  const file = join(mkdtempSync(join(tmpdir(), 'diamond-log-tail-')), name);
  writeFileSync(file, text);
  return file;
};

test('tailLines returns the last N lines and the size they end at', async (t) => {
  const file = tempFile('job.log', 'one\ntwo\nthree\nfour\n');
  t.deepEqual(await tailLines(file, 2), { text: 'three\nfour\n', size: 19 });
  t.deepEqual(await tailLines(file, 10), { text: 'one\ntwo\nthree\nfour\n', size: 19 });
  t.deepEqual(await tailLines(file, 0), { text: '', size: 19 });
  t.is((await tailLines(tempFile('partial.log', 'a\nb'), 1)).text, 'b');
});

test('tailLines reads a large file from its end, across chunk boundaries', async (t) => {
  const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'é'.repeat(i % 7)}`);
  const file = tempFile('big.log', lines.join('\n') + '\n');
  const { text } = await tailLines(file, 3000);
  t.deepEqual(text.slice(0, -1).split('\n'), lines.slice(-3000));
});

test('followLog sends appended bytes, then the next process log', async (t) => {
  const first = tempFile('first.log', 'old\n');
  const second = tempFile('second.log', 'new process\n');
  let latest = first;
  let received = '';
  const follower = followLog(first, 4, { write: (chunk) => { received += chunk.toString(); }, latestFile: async () => latest, intervalMs: 20 });
  try {
    appendFileSync(first, 'appended\n');
    await waitFor(() => received.includes('appended'));
    latest = second;
    await waitFor(() => received.endsWith('---\nnew process\n'));
    t.regex(received, /^appended\n\n--- the job has a new process; following .*second\.log ---\nnew process\n$/);
  } finally {
    follower.stop();
  }
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
