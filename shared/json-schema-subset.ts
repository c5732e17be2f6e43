/**
 * A validator of the small subset of JSON Schema (draft 2020-12) the message contracts in
 * shared/schemas/*.schema.json use: type, enum, const, pattern, minimum, minLength, required,
 * properties, additionalProperties, and allOf of if/then. diamond_sdk/contracts.py implements
 * the same subset, so both languages accept and reject the same messages. A keyword outside
 * the subset is refused when the schema is loaded, never silently ignored.
 */
export interface JsonSchema {
  readonly type?: JsonType | readonly JsonType[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly minLength?: number;
  readonly required?: readonly string[];
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly additionalProperties?: boolean | JsonSchema;
  readonly allOf?: readonly { readonly if: JsonSchema; readonly then: JsonSchema }[];
}

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

/** The first problem found: the field's path (`end_offsets.0`, or `(message)` for the whole) and what is wrong. */
export interface SchemaViolation {
  readonly field: string;
  readonly problem: string;
}

const KEYWORDS = new Set(['type', 'enum', 'const', 'pattern', 'minimum', 'minLength', 'required', 'properties', 'additionalProperties', 'allOf', 'if', 'then']);
const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description']);

/** Throws when the schema uses a keyword the subset does not implement. */
export function assertSupportedSchema(schema: unknown, path = '(schema)'): asserts schema is JsonSchema {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new Error(`${path}: a schema must be an object`);
  for (const [key, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(key)) continue;
    if (!KEYWORDS.has(key)) throw new Error(`${path}: keyword "${key}" is outside the subset shared/json-schema-subset.ts implements`);
    if (key === 'properties') for (const [name, sub] of Object.entries(value as object)) assertSupportedSchema(sub, `${path}.${name}`);
    if (key === 'additionalProperties' && typeof value !== 'boolean') assertSupportedSchema(value, `${path}.*`);
    if (key === 'allOf') for (const [i, rule] of (value as unknown[]).entries()) assertSupportedSchema(rule, `${path}.allOf[${i}]`);
    if (key === 'if' || key === 'then') assertSupportedSchema(value, `${path}.${key}`);
  }
}

function typeOf(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as JsonType;
}

function hasType(value: unknown, type: JsonType): boolean {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

const describe = (value: unknown): string => JSON.stringify(value)?.slice(0, 80) ?? String(value);
const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

/** null when `value` satisfies `schema`, else the first violation. */
export function checkAgainstSchema(schema: JsonSchema, value: unknown, path = ''): SchemaViolation | null {
  const field = path || '(message)';
  if (schema.type !== undefined) {
    const types = typeof schema.type === 'string' ? [schema.type] : schema.type;
    if (!types.some((t) => hasType(value, t))) return { field, problem: `must be ${types.join(' or ')}, got ${typeOf(value)} ${describe(value)}` };
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) return { field, problem: `must be one of ${schema.enum.join(', ')}, got ${describe(value)}` };
  if (schema.const !== undefined && value !== schema.const) return { field, problem: `must be ${describe(schema.const)}` };
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return { field, problem: `must have at least ${schema.minLength} characters` };
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) return { field, problem: `must match ${schema.pattern}, got ${describe(value)}` };
  }
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) return { field, problem: `must be at least ${schema.minimum}, got ${value}` };
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) if (!(name in object)) return { field: join(path, name), problem: 'is required' };
    for (const [name, item] of Object.entries(object)) {
      const sub = schema.properties?.[name] ?? schema.additionalProperties ?? true;
      if (sub === false) return { field: join(path, name), problem: 'is not allowed' };
      if (sub === true) continue;
      const violation = checkAgainstSchema(sub, item, join(path, name));
      if (violation) return violation;
    }
  }
  for (const rule of schema.allOf ?? []) {
    if (checkAgainstSchema(rule.if, value, path) === null) {
      const violation = checkAgainstSchema(rule.then, value, path);
      if (violation) return violation;
    }
  }
  return null;
}
