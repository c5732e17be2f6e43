/**
 * The small declarative mapping each source has: how its field names map onto
 * CustomerRecord, defaults for fields it never sends, and how to read its timestamps and
 * amounts when the value alone is ambiguous. Stored with the source (see sources.ts).
 *
 *   { rename: { cust_id: 'customer_id' }, defaults: { type: 'purchase' }, decimal: 'comma' }
 */
import { DiamondError } from '../shared/errors.ts';

export type TimeFormat = 'auto' | 'iso' | 'epoch-seconds' | 'epoch-millis';
export type DecimalSeparator = 'auto' | 'dot' | 'comma';

export interface SourceMapping {
  /** Source field name → CustomerRecord field (or attribute) name. */
  readonly rename: Readonly<Record<string, string>>;
  /** Used when the (renamed) field is missing, null or empty. */
  readonly defaults: Readonly<Record<string, string | number>>;
  /** `auto`: numbers below 1e11 are epoch seconds, larger ones millis; strings ISO-8601 or numeric. */
  readonly timeFormat: TimeFormat;
  /** `auto`: the last of `.`/`,` is the decimal mark; a lone `,` before exactly 3 digits is ambiguous. */
  readonly decimal: DecimalSeparator;
}

/** Renames most sources need; a source's own mapping is applied over these. */
export const DEFAULT_MAPPING: SourceMapping = Object.freeze({
  rename: Object.freeze({
    cust_id: 'customer_id', customerId: 'customer_id', customer: 'customer_id',
    recordId: 'record_id', id: 'record_id',
    timestamp: 'event_time', ts: 'event_time', time: 'event_time', eventTime: 'event_time',
    event_type: 'type', eventType: 'type',
  }),
  defaults: Object.freeze({}),
  timeFormat: 'auto',
  decimal: 'auto',
});

const TIME_FORMATS: readonly TimeFormat[] = ['auto', 'iso', 'epoch-seconds', 'epoch-millis'];
const DECIMALS: readonly DecimalSeparator[] = ['auto', 'dot', 'comma'];

export class MappingError extends DiamondError {
  constructor(message: string, hint?: string) {
    super(message, { code: 'DIAMOND_MAPPING_INVALID', hint });
  }
}

/** The default mapping with a source's own settings applied over it. */
export function resolveMapping(own: Partial<SourceMapping> = {}): SourceMapping {
  return {
    rename: { ...DEFAULT_MAPPING.rename, ...own.rename },
    defaults: { ...DEFAULT_MAPPING.defaults, ...own.defaults },
    timeFormat: own.timeFormat ?? DEFAULT_MAPPING.timeFormat,
    decimal: own.decimal ?? DEFAULT_MAPPING.decimal,
  };
}

/** Validates a mapping read from storage or built from CLI flags. */
export function parseMapping(value: unknown): Partial<SourceMapping> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MappingError('mapping is not a JSON object');
  const input = value as Record<string, unknown>;
  const mapping: { -readonly [K in keyof SourceMapping]?: SourceMapping[K] } = {};
  if (input['rename'] !== undefined) mapping.rename = stringRecord('rename', input['rename'], (v): v is string => typeof v === 'string' && v !== '');
  if (input['defaults'] !== undefined) {
    mapping.defaults = stringRecord('defaults', input['defaults'], (v): v is string | number => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
  }
  if (input['timeFormat'] !== undefined) {
    if (!TIME_FORMATS.includes(input['timeFormat'] as TimeFormat)) throw new MappingError(`timeFormat is ${JSON.stringify(input['timeFormat'])}`, `use one of ${TIME_FORMATS.join(', ')}`);
    mapping.timeFormat = input['timeFormat'] as TimeFormat;
  }
  if (input['decimal'] !== undefined) {
    if (!DECIMALS.includes(input['decimal'] as DecimalSeparator)) throw new MappingError(`decimal is ${JSON.stringify(input['decimal'])}`, `use one of ${DECIMALS.join(', ')}`);
    mapping.decimal = input['decimal'] as DecimalSeparator;
  }
  return mapping;
}

/** `['cust_id=customer_id', 'ts=event_time']` → `{ cust_id: 'customer_id', ts: 'event_time' }` (CLI flags). */
export function parsePairs(flag: string, pairs: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1 || at === pair.length - 1) throw new MappingError(`--${flag} "${pair}" is not name=value`, `write it as --${flag} cust_id=customer_id`);
    result[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return result;
}

function stringRecord<T>(name: string, value: unknown, valid: (v: unknown) => v is T): Record<string, T> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MappingError(`${name} is not an object of name → value`);
  const result: Record<string, T> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!valid(item)) throw new MappingError(`${name}.${key} is ${JSON.stringify(item)}, which is not allowed there`);
    result[key] = item;
  }
  return result;
}
