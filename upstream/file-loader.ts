/**
 * The bulk file loader: streams a CSV or JSONL file through the shared pipeline in batches,
 * so a multi-GB file never sits in memory (one batch and one read chunk at a time).
 *
 *   const summary = await loadFile('orders.csv', { source, pipeline, onProgress: draw });
 *
 * Safe to rerun: record ids come from the record (record_id) or a stable hash of its
 * content, so loading the same file twice writes the same ids and nothing is duplicated
 * downstream. While Kafka is down a batch is retried (with backoff) until it is acknowledged.
 */
import { createReadStream, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { DiamondError, KafkaWriteError, BackpressureError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { readCsvHeader, splitCsvRecord } from './csv.ts';
import type { RecordPipeline, SourceRef } from './pipeline.ts';
import { parseItem, type RawItem } from './split.ts';

export type FileFormat = 'csv' | 'jsonl';

export interface LoadProgress {
  readonly file: string;
  readonly totalBytes: number;
  readonly bytesRead: number;
  readonly records: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly elapsedMs: number;
}

export interface LoadFileOptions {
  readonly source: SourceRef;
  readonly pipeline: RecordPipeline;
  readonly logger: Logger;
  /** Default: from the extension (.csv, .tsv → csv; .jsonl, .ndjson, .json → jsonl). */
  readonly format?: FileFormat;
  /** CSV delimiter; default `,` (tab for .tsv). */
  readonly delimiter?: string;
  readonly batchSize?: number;
  readonly onProgress?: (progress: LoadProgress) => void;
  /** Give up after Kafka refused one batch this many times in a row (default: about 5 minutes). */
  readonly maxBatchAttempts?: number;
}

export class FileFormatError extends DiamondError {
  constructor(message: string, hint?: string) {
    super(message, { code: 'DIAMOND_FILE_FORMAT', hint });
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function detectFormat(path: string): FileFormat {
  const extension = extname(path).toLowerCase();
  if (extension === '.csv' || extension === '.tsv') return 'csv';
  if (extension === '.jsonl' || extension === '.ndjson' || extension === '.json') return 'jsonl';
  throw new FileFormatError(`cannot tell the format of ${basename(path)} from its extension`, 'pass --format csv or --format jsonl');
}

/** Physical lines of a file as raw bytes (without \n or \r\n), with their 1-based numbers, read in chunks. */
async function* readLines(path: string, onBytes: (bytes: number) => void): AsyncGenerator<{ line: Buffer; number: number }> {
  let rest = Buffer.alloc(0);
  let number = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    const buffer = chunk as Buffer;
    onBytes(buffer.length);
    const data = rest.length > 0 ? Buffer.concat([rest, buffer]) : buffer;
    let start = 0;
    for (let end = data.indexOf(0x0a, start); end !== -1; end = data.indexOf(0x0a, start)) {
      number += 1;
      yield { line: data.subarray(start, data[end - 1] === 0x0d ? end - 1 : end), number };
      start = end + 1;
    }
    rest = Buffer.from(data.subarray(start)); // a copy, so the chunk itself can be released
  }
  if (rest.length > 0) yield { line: rest[rest.length - 1] === 0x0d ? rest.subarray(0, -1) : rest, number: number + 1 };
}

interface LocatedItem {
  readonly item: RawItem;
  readonly line: number;
}

async function* jsonlItems(lines: AsyncIterable<{ line: Buffer; number: number }>): AsyncGenerator<LocatedItem> {
  for await (const { line, number } of lines) {
    if (line.toString('latin1').trim() === '') continue;
    yield { item: parseItem(line), line: number };
  }
}

async function* csvItems(lines: AsyncIterable<{ line: Buffer; number: number }>, delimiter: string): AsyncGenerator<LocatedItem> {
  let header: string[] | null = null;
  type PendingRecord = { raw: Buffer[]; text: string; line: number };
  let pending: PendingRecord | null = null;
  for await (const { line, number } of lines) {
    let text: string;
    try {
      text = strictUtf8.decode(line);
    } catch {
      if (pending) {
        yield { item: { raw: Buffer.concat([...pending.raw, line]), parsed: false, reasons: [{ field: '(row)', problem: 'is not valid UTF-8' }] }, line: pending.line };
        pending = null;
      } else {
        yield { item: { raw: line, parsed: false, reasons: [{ field: '(row)', problem: 'is not valid UTF-8' }] }, line: number };
      }
      continue;
    }
    const record: PendingRecord = pending ? { raw: [...pending.raw, Buffer.from('\n'), line], text: `${pending.text}\n${text}`, line: pending.line } : { raw: [line], text, line: number };
    if (header === null && record.text.trim() === '') continue;
    const fields = splitCsvRecord(record.text.replace(/^\uFEFF/, ''), delimiter);
    if (fields === null) {
      pending = record;
      continue;
    }
    pending = null;
    if (header === null) {
      const parsed = readCsvHeader(fields);
      if (parsed.problems.length > 0) throw new FileFormatError(`the CSV header (line ${record.line}) is not usable: ${parsed.problems.join('; ')}`);
      header = parsed.names;
      continue;
    }
    if (record.text.trim() === '') continue;
    const raw = Buffer.concat(record.raw);
    if (fields.length !== header.length) {
      yield { item: { raw, parsed: false, reasons: [{ field: '(row)', problem: `has ${fields.length} columns; the header has ${header.length}` }] }, line: record.line };
      continue;
    }
    const value: Record<string, string> = {};
    header.forEach((name, index) => {
      const cell = fields[index] ?? '';
      if (cell !== '') value[name] = cell; // CSV cannot tell empty from missing: empty is missing, so defaults apply
    });
    yield { item: { raw, parsed: true, value }, line: record.line };
  }
  if (pending) yield { item: { raw: Buffer.concat(pending.raw), parsed: false, reasons: [{ field: '(row)', problem: 'a quoted field is never closed before the end of the file' }] }, line: pending.line };
}

export async function loadFile(path: string, options: LoadFileOptions): Promise<LoadProgress> {
  const format = options.format ?? detectFormat(path);
  const delimiter = options.delimiter ?? (extname(path).toLowerCase() === '.tsv' ? '\t' : ',');
  const batchSize = options.batchSize ?? 2_000;
  const started = performance.now();
  const file = basename(path);
  let progress: LoadProgress = { file, totalBytes: statSync(path).size, bytesRead: 0, records: 0, accepted: 0, rejected: 0, elapsedMs: 0 };
  const lines = readLines(path, (bytes) => {
    progress = { ...progress, bytesRead: progress.bytesRead + bytes };
  });
  const items = format === 'csv' ? csvItems(lines, delimiter) : jsonlItems(lines);
  let batch: LocatedItem[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const current = batch;
    batch = [];
    const result = await sendWithRetry(options, current);
    progress = {
      ...progress,
      records: progress.records + current.length,
      accepted: progress.accepted + result.accepted,
      rejected: progress.rejected + result.rejected.length,
      elapsedMs: performance.now() - started,
    };
    options.onProgress?.(progress);
  };
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  progress = { ...progress, elapsedMs: performance.now() - started };
  options.onProgress?.(progress);
  return progress;
}

async function sendWithRetry(options: LoadFileOptions, batch: readonly LocatedItem[]): ReturnType<RecordPipeline['process']> {
  const maxAttempts = options.maxBatchAttempts ?? 60;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await options.pipeline.process(options.source, batch.map((located) => located.item), 'file', (index) => ({ line: batch[index]?.line ?? 0 }));
    } catch (error) {
      if (!(error instanceof KafkaWriteError || error instanceof BackpressureError) || attempt >= maxAttempts) throw error;
      const waitMs = Math.min(5_000, 250 * 2 ** attempt);
      options.logger.warn({ err: error, attempt, waitMs }, 'Kafka did not acknowledge a batch; retrying it');
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}
