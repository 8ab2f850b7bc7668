/**
 * The CLI's JSON schema, read from docs/CLI.md (the ```json block), and a validator for the part
 * of JSON Schema 2020-12 it uses: $ref into $defs, type (with "integer" and "null"), const,
 * enum, properties, required, additionalProperties: false, items, oneOf, pattern, minimum.
 * Small on purpose: the CLI declares no validator dependency, and an unknown keyword is an
 * error here rather than silently ignored.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Schema = { readonly [keyword: string]: unknown };

const DOC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../docs/CLI.md');
const KNOWN = new Set(['$schema', '$defs', '$ref', 'type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'items', 'oneOf', 'pattern', 'minimum', 'description']);

export function loadCliSchema(): Schema {
  const blocks = [...readFileSync(DOC, 'utf8').matchAll(/```json\n([\s\S]*?)\n```/g)];
  if (blocks.length !== 1) throw new Error(`docs/CLI.md should hold exactly one json block (found ${blocks.length})`);
  return JSON.parse(blocks[0]![1]!) as Schema;
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function matchesType(v: unknown, t: string): boolean {
  if (t === 'integer') return Number.isInteger(v);
  return typeOf(v) === t;
}

/** Every way `value` breaks `schema` (empty: it conforms); each with the JSON path. */
export function validate(root: Schema, schema: Schema, value: unknown, path = '$'): string[] {
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) return [`${path}: the schema uses "${k}", which this validator does not know`];
  if (typeof schema.$ref === 'string') {
    const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    const target = m !== null ? (root.$defs as Record<string, Schema> | undefined)?.[m[1]!] : undefined;
    if (target === undefined) return [`${path}: unresolvable $ref ${schema.$ref}`];
    return validate(root, target, value, path);
  }
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => matchesType(value, t))) return [`${path}: expected ${types.join(' or ')}, got ${typeOf(value)} ${JSON.stringify(value)?.slice(0, 80)}`];
  }
  if ('const' in schema && value !== schema.const) errors.push(`${path}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof schema.pattern === 'string' && typeof value === 'string' && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum) errors.push(`${path}: ${value} < ${schema.minimum}`);
  if (Array.isArray(schema.oneOf)) {
    const passing = (schema.oneOf as Schema[]).filter((s) => validate(root, s, value, path).length === 0).length;
    if (passing !== 1) {
      const why = (schema.oneOf as Schema[]).map((s, i) => `  [${i}] ${validate(root, s, value, path).join('; ')}`).join('\n');
      errors.push(`${path}: matches ${passing} of the oneOf alternatives (exactly 1 wanted)${passing === 0 ? `:\n${why}` : ''}`);
    }
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) errors.push(`${path}: missing "${r}"`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k] !== undefined) errors.push(...validate(root, props[k], v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: "${k}" is not in the schema`);
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) value.forEach((v, i) => errors.push(...validate(root, schema.items as Schema, v, `${path}[${i}]`)));
  return errors;
}

/** Validate against one of the schema's named definitions ("ListOutput"). */
export function validateAs(root: Schema, definition: string, value: unknown): string[] {
  return validate(root, { $ref: `#/$defs/${definition}` }, value);
}
