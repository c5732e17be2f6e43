import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiamondError } from '../../shared/errors.ts';
import { controlToken, SseParser } from './control-client.ts';
import { writeLocalPlatform } from '../platform/platform-file.ts';

test('the SSE parser joins chunks, skips comments and splits messages', (t) => {
  const parser = new SseParser();
  t.deepEqual(parser.push(': connected\n\nid: 0-1\nevent: lifecycle\nda'), []);
  t.deepEqual(parser.push('ta: {"event":"running"}\n\n: keep-alive\n\n'), [{ event: 'lifecycle', id: '0-1', data: '{"event":"running"}' }]);
  t.deepEqual(parser.push('data: a\r\ndata: b\r\n\r\n'), [{ event: 'message', id: '0-1', data: 'a\nb' }]);
});

test('the CLI token comes from DIAMOND_TOKEN, else the local platform file, else a hint', (t) => {
  const home = mkdtempSync(join(tmpdir(), 'diamond-token-'));
  t.is(controlToken({ home, control: { token: 'dmd_env', url: '' } }), 'dmd_env');
  const error = t.throws(() => controlToken({ home, control: { token: '', url: '' } }), { instanceOf: DiamondError });
  t.is(error?.code, 'DIAMOND_TOKEN_MISSING');
  t.regex(error?.hint ?? '', /set DIAMOND_TOKEN or run `npx diamond up`/);
  t.regex(error?.hint ?? '', new RegExp(`${home}/local.json`));
  t.regex(error?.hint ?? '', /diamond token add --role deployer/);
  writeLocalPlatform({ home }, { controlUrl: 'http://127.0.0.1:18070', ingestUrl: '', feedbackUrl: '', token: 'dmd_local' });
  t.is(controlToken({ home, control: { token: '', url: '' } }), 'dmd_local');
});
