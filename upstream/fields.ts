/**
 * Readers for the typed fields of a CustomerRecord. Each takes whatever the source sent and
 * returns either the normalized value or a problem sentence (the caller adds the field name).
 * Pure functions: no I/O, no clock.
 */
import type { DecimalSeparator, TimeFormat } from './mapping.ts';

export type FieldResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const ok = <T>(value: T): FieldResult<T> => ({ ok: true, value });
const fail = <T>(problem: string): FieldResult<T> => ({ ok: false, problem });

/** Accepted event times: [1970-01-01, 2100-01-01). Year 0 or 9999 is a bug at the source, not history. */
export const MIN_EVENT_TIME = Date.UTC(1970, 0, 1);
export const MAX_EVENT_TIME = Date.UTC(2100, 0, 1);
/** Epoch values below this are seconds (1e11 s is year 5138; 1e11 ms is 1973). */
const SECONDS_LIMIT = 1e11;

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value;
}

/** Trims, applies Unicode NFKC and case-folds an id. Numbers are accepted as ids. */
export function readId(value: unknown, maxLength: number): FieldResult<string> {
  if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
  if (typeof value !== 'string') return fail(`expected a string or number, got ${describeType(value)}`);
  if (value.length > maxLength * 4) return fail(`is ${value.length} characters long; at most ${maxLength} are allowed`);
  const folded = value.trim().normalize('NFKC').toLowerCase();
  if (folded === '') return fail('is empty');
  if (folded.length > maxLength) return fail(`is ${folded.length} characters long; at most ${maxLength} are allowed`);
  return ok(folded);
}

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const NUMERIC = /^[+-]?\d+(?:\.\d+)?$/;

/**
 * ISO-8601 (with or without an offset; no offset means UTC), epoch seconds or epoch millis,
 * as a number or numeric text → UTC epoch millis.
 */
export function readEventTime(value: unknown, format: TimeFormat): FieldResult<number> {
  let millis: number;
  if (typeof value === 'number' || (typeof value === 'string' && NUMERIC.test(value.trim()))) {
    if (format === 'iso') return fail(`expected an ISO-8601 time, got ${describeType(value)}`);
    const number = Number(value);
    if (!Number.isFinite(number)) return fail(`is not a finite number`);
    const seconds = format === 'epoch-seconds' || (format === 'auto' && Math.abs(number) < SECONDS_LIMIT);
    millis = Math.round(seconds ? number * 1000 : number);
  } else if (typeof value === 'string') {
    if (format === 'epoch-seconds' || format === 'epoch-millis') return fail(`expected ${format}, got ${describeType(value)}`);
    const parsed = parseIso(value.trim());
    if (!parsed.ok) return parsed;
    millis = parsed.value;
  } else {
    return fail(`expected an ISO-8601 time or epoch seconds/millis, got ${describeType(value)}`);
  }
  if (millis < MIN_EVENT_TIME || millis >= MAX_EVENT_TIME) {
    const year = new Date(millis).getUTCFullYear();
    return fail(`is in year ${Number.isNaN(year) ? '(out of range)' : year}; accepted are 1970 to 2099`);
  }
  return ok(millis);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
}

function parseIso(text: string): FieldResult<number> {
  const match = ISO_8601.exec(text);
  if (!match) return fail(`expected an ISO-8601 time such as 2026-11-01T12:00:00Z, got ${describeType(text)}`);
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone = 'Z'] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    return fail(`${JSON.stringify(text)} is not a valid calendar date and time`);
  }
  // Date.UTC maps years 0–99 to 19xx; they are outside the accepted range anyway.
  if (year < 100) return fail(`is in year ${year}; accepted are 1970 to 2099`);
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
  }
  const millis = fraction === '' ? 0 : Number(fraction.padEnd(3, '0').slice(0, 3));
  return ok(Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000);
}

export interface Amount {
  readonly amount: number | null;
  /** A currency written inside the amount text ("EUR 12,50", "$3"), if any. */
  readonly currency: string | null;
}

const SYMBOLS: Readonly<Record<string, string>> = { '€': 'EUR', $: 'USD', '£': 'GBP', '¥': 'JPY' };
const MAX_AMOUNT = 1e15;
const PLAIN_NUMBER = /^-?\d{1,15}(?:\.\d+)?$/;

/** 1234.56, "1,234.56", "1.234,56", "1 234,56 EUR", "€12" → a number (and the currency in the text). */
export function readAmount(value: unknown, decimal: DecimalSeparator): FieldResult<Amount> {
  if (value === null || value === undefined || value === '') return ok({ amount: null, currency: null });
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || Math.abs(value) >= MAX_AMOUNT) return fail(`${value} is not a plausible amount`);
    return ok({ amount: value, currency: null });
  }
  if (typeof value !== 'string') return fail(`expected a number or text like "1,234.56", got ${describeType(value)}`);
  if (PLAIN_NUMBER.test(value) && decimal !== 'comma') return ok({ amount: Number(value), currency: null }); // the common case, "12.50"
  let text = value.trim();
  let currency: string | null = null;
  const code = /^([A-Za-z]{3})\s*(.+)$/.exec(text) ?? /^(.+?)\s*([A-Za-z]{3})$/.exec(text);
  if (code) {
    const [first = '', second = ''] = [code[1], code[2]];
    const isPrefix = /^[A-Za-z]{3}$/.test(first);
    currency = (isPrefix ? first : second).toUpperCase();
    text = isPrefix ? second : first;
  }
  const symbol = /^([€$£¥])\s*(.+)$/.exec(text) ?? /^(.+?)\s*([€$£¥])$/.exec(text);
  if (symbol) {
    const [first = '', second = ''] = [symbol[1], symbol[2]];
    const isPrefix = first in SYMBOLS;
    currency ??= SYMBOLS[isPrefix ? first : second] ?? null;
    text = isPrefix ? second : first;
  }
  text = text.replace(/[\s'\u00a0\u202f]/g, ''); // spaces and apostrophes are thousands separators
  const number = parseDecimal(text, decimal);
  if (number === null) return fail(`${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)} is not an amount like "1,234.56" or "1.234,56"`);
  if (typeof number === 'string') return fail(number);
  if (Math.abs(number) >= MAX_AMOUNT) return fail(`${value} is not a plausible amount`);
  return ok({ amount: number, currency });
}

/** A number, null when the text is not a number at all, or a problem sentence when it is ambiguous. */
function parseDecimal(text: string, decimal: DecimalSeparator): number | string | null {
  const match = /^([+-]?)([\d.,]+)$/.exec(text);
  if (!match) return null;
  const [, sign = '', body = ''] = match;
  let mark: '.' | ',' | null;
  if (decimal === 'dot') mark = '.';
  else if (decimal === 'comma') mark = ',';
  else {
    const dots = body.split('.').length - 1;
    const commas = body.split(',').length - 1;
    if (dots > 0 && commas > 0) mark = body.lastIndexOf('.') > body.lastIndexOf(',') ? '.' : ',';
    else if (dots === 1) mark = '.';
    else if (commas === 1) {
      if (/,\d{3}$/.test(body)) return `"${text}" is ambiguous (1,234 or 1.234?); set the source's decimal separator`;
      mark = ',';
    } else mark = null; // several of one kind: thousands separators only
  }
  const group = mark === ',' ? '.' : ',';
  const [whole = '', fraction, extra] = mark === null ? [body] : body.split(mark);
  if (extra !== undefined || whole === '') return null;
  // Thousands separators must sit every 3 digits: "1,23,4" is a typo, not a number.
  if (whole.includes(group) && !new RegExp(`^\\d{1,3}(\\${group}\\d{3})+$`).test(whole)) return null;
  if (mark === null && !/^\d+$/.test(whole.split(group).join(''))) return null;
  if (fraction !== undefined && !/^\d+$/.test(fraction)) return null;
  return Number(`${sign}${whole.split(group).join('')}${fraction === undefined ? '' : `.${fraction}`}`);
}

/** ISO 4217: three letters, upper-cased. */
export function readCurrency(value: unknown): FieldResult<string | null> {
  if (value === null || value === undefined || value === '') return ok(null);
  if (typeof value !== 'string') return fail(`expected a 3-letter ISO 4217 code, got ${describeType(value)}`);
  const code = value.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(code)) return fail(`expected a 3-letter ISO 4217 code, got ${describeType(value)}`);
  return ok(code);
}

/** A short lower-case word such as purchase, refund, login. */
export function readType(value: unknown, maxLength: number): FieldResult<string> {
  if (typeof value !== 'string') return fail(`expected text such as "purchase", got ${describeType(value)}`);
  const type = value.trim().toLowerCase();
  if (type === '') return fail('is empty');
  if (type.length > maxLength) return fail(`is ${type.length} characters long; at most ${maxLength} are allowed`);
  return ok(type);
}
