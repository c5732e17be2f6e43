/**
 * Splits what a client sent into records, keeping every record's bytes exactly as received
 * (they go into records.rejected untouched when the record is bad).
 *
 *   JSON array  `[{…},{…}]`  → one item per element (a truncated array still yields its
 *                              complete elements, and its broken tail as a bad item)
 *   one object  `{…}`         → one item
 *   NDJSON      `{…}\n{…}\n`  → one item per non-blank line; anything else is read as NDJSON,
 *                              so a body that is not JSON at all becomes bad items, not a crash
 *
 * Works on bytes: JSON's structural characters are ASCII and never occur inside a UTF-8
 * multi-byte sequence, so invalid UTF-8 stays confined to the record that carries it.
 */
import { isUtf8 } from 'node:buffer';
import type { Reason } from './normalize.ts';

export type RawItem =
  | { readonly raw: Buffer; readonly parsed: true; readonly value: unknown }
  | { readonly raw: Buffer; readonly parsed: false; readonly reasons: readonly Reason[] };

const [OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT, QUOTE, BACKSLASH, COMMA, NEWLINE, CR] = [0x5b, 0x5d, 0x7b, 0x7d, 0x22, 0x5c, 0x2c, 0x0a, 0x0d];

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === NEWLINE || byte === CR;
}

/** True when the body holds nothing but whitespace: there are no records to accept or reject. */
export function isBlank(body: Buffer): boolean {
  for (const byte of body) if (!isSpace(byte) && byte !== 0xef && byte !== 0xbb && byte !== 0xbf) return false;
  return true;
}

export function splitBody(body: Buffer): RawItem[] {
  let start = 0;
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) start = 3; // UTF-8 BOM
  while (isSpace(body[start])) start += 1;
  if (body[start] === OPEN_ARRAY) return splitJsonArray(body, start);
  if (body[start] === OPEN_OBJECT) {
    const whole = parseItem(body.subarray(start));
    if (whole.parsed) return [whole];
  }
  return splitLines(body.subarray(start));
}

/** Decodes (strict UTF-8) and parses one record's bytes. */
export function parseItem(raw: Buffer): RawItem {
  if (!isUtf8(raw)) return { raw, parsed: false, reasons: [{ field: '(record)', problem: 'is not valid UTF-8' }] };
  try {
    return { raw, parsed: true, value: JSON.parse(raw.toString('utf8')) as unknown };
  } catch (error) {
    return { raw, parsed: false, reasons: [{ field: '(record)', problem: `is not valid JSON (${(error as Error).message})` }] };
  }
}

/** NDJSON: one record per line; blank lines are not records. */
export function splitLines(body: Buffer): RawItem[] {
  const items: RawItem[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(NEWLINE, start);
    if (end === -1) end = body.length;
    let last = end;
    if (body[last - 1] === CR) last -= 1;
    const line = body.subarray(start, last);
    if (!isBlank(line)) items.push(parseItem(line));
    start = end + 1;
  }
  return items;
}

function splitJsonArray(body: Buffer, open: number): RawItem[] {
  const items: RawItem[] = [];
  let i = open + 1;
  for (;;) {
    while (isSpace(body[i])) i += 1;
    if (i >= body.length) {
      items.push({ raw: body.subarray(open), parsed: false, reasons: [{ field: '(body)', problem: 'the JSON array ends before its closing ]' }] });
      return items;
    }
    if (body[i] === CLOSE_ARRAY) break;
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < body.length; i += 1) {
      const byte = body[i];
      if (inString) {
        if (byte === BACKSLASH) i += 1;
        else if (byte === QUOTE) inString = false;
      } else if (byte === QUOTE) inString = true;
      else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) depth += 1;
      else if (depth === 0 && (byte === COMMA || byte === CLOSE_ARRAY)) break;
      else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) depth -= 1;
    }
    let end = Math.min(i, body.length);
    while (end > start && isSpace(body[end - 1])) end -= 1;
    const raw = body.subarray(start, end);
    if (i >= body.length) {
      items.push({ raw, parsed: false, reasons: [{ field: '(record)', problem: 'is truncated: the body ends inside this record' }] });
      return items;
    }
    if (raw.length > 0) items.push(parseItem(raw)); // `[a,,b]` or `[a,]`: nothing there to lose
    if (body[i] === CLOSE_ARRAY) break;
    i += 1;
  }
  const rest = body.subarray(i + 1);
  if (!isBlank(rest)) items.push({ raw: rest, parsed: false, reasons: [{ field: '(body)', problem: 'unexpected text after the closing ] of the JSON array' }] });
  return items;
}
