/**
 * Streams NDJSON lines to the HTTP ingest API (`POST /v1/records` with a source's key) at a
 * steady rate, in small requests, reporting progress after each answer. A 503 means nothing
 * of that request was acknowledged (upstream's promise), so the same batch is sent again
 * after its Retry-After.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DiamondError, ServiceUnavailableError } from '../../shared/errors.ts';

export interface StreamProgress {
  readonly total: number;
  readonly sent: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly elapsedMs: number;
}

export interface RejectedLine {
  /** Index in the streamed lines. */
  readonly index: number;
  readonly reasons: readonly { readonly field: string; readonly problem: string }[];
}

export interface StreamResult extends StreamProgress {
  readonly requests: number;
  readonly retries: number;
  readonly errors: readonly RejectedLine[];
}

export interface StreamOptions {
  /** Records per second. */
  readonly rate: number;
  readonly onProgress?: (progress: StreamProgress) => void;
}

interface IngestAnswer {
  readonly accepted: number;
  readonly rejected: number;
  readonly errors: readonly { readonly index: number; readonly reasons: RejectedLine['reasons'] }[];
}

const MAX_RETRIES = 10;

export async function streamRecords(ingestUrl: string, sourceKey: string, lines: readonly string[], options: StreamOptions): Promise<StreamResult> {
  const batchSize = Math.max(1, Math.round(options.rate / 10)); // about ten requests a second
  const started = performance.now();
  let accepted = 0;
  let rejected = 0;
  let requests = 0;
  let retries = 0;
  const errors: RejectedLine[] = [];
  const progress = (sent: number): StreamProgress => ({ total: lines.length, sent, accepted, rejected, elapsedMs: performance.now() - started });

  for (let offset = 0; offset < lines.length; offset += batchSize) {
    const due = started + (offset / options.rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const batch = lines.slice(offset, offset + batchSize);
    for (let attempt = 0; ; attempt++) {
      requests += 1;
      const answer = await post(ingestUrl, sourceKey, batch.join('\n') + '\n');
      if (answer.kind === 'ok') {
        accepted += answer.body.accepted;
        rejected += answer.body.rejected;
        errors.push(...answer.body.errors.map((e) => ({ index: offset + e.index, reasons: e.reasons })));
        break;
      }
      if (attempt >= MAX_RETRIES) {
        throw new DiamondError(`the ingest API kept answering 503 (${answer.message})`, { code: 'DIAMOND_DEMO_INGEST_UNAVAILABLE', hint: 'Kafka may be overloaded or down: `npx diamond services status`' });
      }
      retries += 1;
      await sleep(answer.retryAfterMs);
    }
    options.onProgress?.(progress(Math.min(lines.length, offset + batch.length)));
  }
  return { ...progress(lines.length), requests, retries, errors };
}

type PostAnswer = { readonly kind: 'ok'; readonly body: IngestAnswer } | { readonly kind: 'retry'; readonly retryAfterMs: number; readonly message: string };

async function post(ingestUrl: string, sourceKey: string, body: string): Promise<PostAnswer> {
  let response: Response;
  try {
    response = await fetch(`${ingestUrl}/v1/records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sourceKey}`, 'content-type': 'application/x-ndjson' },
      body,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (cause) {
    throw new ServiceUnavailableError('ingest API', ingestUrl, { cause, hint: 'run `npx diamond up` (or `npx diamond serve upstream`) and the demo again' });
  }
  const text = await response.text();
  if (response.status === 202) return { kind: 'ok', body: JSON.parse(text) as IngestAnswer };
  if (response.status === 503) {
    return { kind: 'retry', retryAfterMs: Number(response.headers.get('retry-after') ?? '1') * 1000, message: text.slice(0, 200) };
  }
  if (response.status === 401) {
    throw new DiamondError('the ingest API refused the demo source key', { code: 'DIAMOND_DEMO_SOURCE_KEY', hint: 'delete .diamond/demo/state.json and run the demo again (it creates a new key)' });
  }
  throw new DiamondError(`the ingest API answered ${response.status}: ${text.slice(0, 300)}`, { code: 'DIAMOND_DEMO_INGEST_FAILED', hint: 'see .diamond/logs/platform-upstream.log' });
}
