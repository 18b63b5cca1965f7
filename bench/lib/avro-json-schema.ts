/**
 * Avro schema (with adgate's bound attributes) → JSON Schema (draft-07) for the same JSON input
 * decoders/normalize.ts accepts in 'json' mode, so a baseline validator (ajv) checks the same
 * rules:
 *   - fields without a default are required; unknown properties are allowed (and ignored)
 *   - ["null", T] unions are nullable; enums list their symbols
 *   - adgate.min/max, minLength/maxLength (UTF-16 units: compile with ajv's `unicode: false`),
 *     minItems/maxItems become the JSON Schema keywords of the same meaning
 *   - int and long are integers within 32 bits and ±(2^53 − 1)
 *   - timestamp-millis also accepts an ISO-8601 string with a zone
 *   - adgate.json strings also accept an object or array
 * Not expressible, so not checked by the result: bounds on a time given as ISO text, that a
 * JSON-text field given as a string parses, and its length and depth given as an object.
 */
export type JsonSchema = Record<string, unknown>

const ISO_TIME = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(?::\\d{2}(?:\\.\\d{1,9})?)?(?:Z|[+-]\\d{2}:?\\d{2})$'
const INT_RANGE = { minimum: -2147483648, maximum: 2147483647 }
const LONG_RANGE = { minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }

interface Node {
  type: unknown
  name?: string
  namespace?: string
  logicalType?: string
  fields?: { name: string; type: unknown; default?: unknown }[]
  symbols?: string[]
  items?: unknown
  values?: unknown
  [key: string]: unknown
}

export function avroToJsonSchema(schema: unknown): JsonSchema {
  const definitions: Record<string, JsonSchema> = {}
  const root = convert(schema, {}, '', definitions)
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...root, definitions }
}

function convert(
  node: unknown,
  bounds: Node | object,
  ns: string,
  defs: Record<string, JsonSchema>,
): JsonSchema {
  if (typeof node === 'string') {
    const primitive = primitiveSchema(node, bounds as Node, undefined)
    if (primitive) return primitive
    const name = node.includes('.') || defs[node] ? node : `${ns}.${node}`
    if (!defs[name] && !defs[node]) throw new Error(`schema: unknown type ${node}`)
    return { $ref: `#/definitions/${defs[name] ? name : node}` }
  }
  if (Array.isArray(node)) return nullable(node, bounds, ns, defs)
  const n = node as Node
  const merged = { ...bounds, ...pickBounds(n) } as Node
  if (typeof n.type !== 'string') return convert(n.type, merged, ns, defs)
  switch (n.type) {
    case 'record': {
      const space = n.namespace ?? ns
      const full = n.name!.includes('.') || !space ? n.name! : `${space}.${n.name}`
      defs[full] = {} // registered before the fields so recursive references resolve
      const properties: Record<string, JsonSchema> = {}
      const required: string[] = []
      for (const f of n.fields!) {
        properties[f.name] = convert(f.type, pickBounds(f as unknown as Node), space, defs)
        if (!('default' in f)) required.push(f.name)
      }
      defs[full] = { type: 'object', properties, ...(required.length > 0 ? { required } : {}) }
      return { $ref: `#/definitions/${full}` }
    }
    case 'enum': {
      const space = n.namespace ?? ns
      const full = n.name!.includes('.') || !space ? n.name! : `${space}.${n.name}`
      defs[full] = { type: 'string', enum: n.symbols }
      return { $ref: `#/definitions/${full}` }
    }
    case 'array':
      return {
        type: 'array',
        items: convert(n.items, {}, ns, defs),
        ...optional('minItems', merged['adgate.minItems']),
        ...optional('maxItems', merged['adgate.maxItems']),
      }
    case 'map':
      return { type: 'object', additionalProperties: convert(n.values, {}, ns, defs) }
    default: {
      const primitive = primitiveSchema(n.type, merged, n.logicalType)
      if (!primitive) throw new Error(`schema: unsupported type ${n.type}`)
      return primitive
    }
  }
}

function primitiveSchema(type: string, b: Node, logicalType: string | undefined): JsonSchema | undefined {
  const numberBounds = (range: { minimum: number; maximum: number }) => ({
    minimum: Math.max(range.minimum, (b['adgate.min'] as number | undefined) ?? range.minimum),
    maximum: Math.min(range.maximum, (b['adgate.max'] as number | undefined) ?? range.maximum),
  })
  switch (type) {
    case 'null':
      return { type: 'null' }
    case 'boolean':
      return { type: 'boolean' }
    case 'int':
      return { type: 'integer', ...numberBounds(INT_RANGE) }
    case 'long': {
      const integer = { type: 'integer', ...numberBounds(LONG_RANGE) }
      return logicalType === 'timestamp-millis'
        ? { anyOf: [integer, { type: 'string', pattern: ISO_TIME }] }
        : integer
    }
    case 'float':
    case 'double':
      return {
        type: 'number',
        ...optional('minimum', b['adgate.min']),
        ...optional('maximum', b['adgate.max']),
      }
    case 'string': {
      const text = {
        type: 'string',
        ...optional('minLength', b['adgate.minLength']),
        ...optional('maxLength', b['adgate.maxLength']),
      }
      return b['adgate.json'] ? { anyOf: [text, { type: ['object', 'array'] }] } : text
    }
    case 'bytes':
      return { not: {} } // JSON has no bytes; the normalizer refuses every JSON value here
    default:
      return undefined
  }
}

// ["null", T]: folded into T's own `type` when T is a plain typed schema (cheaper to validate).
function nullable(
  branches: unknown[],
  bounds: object,
  ns: string,
  defs: Record<string, JsonSchema>,
): JsonSchema {
  const rest = branches.filter((b) => b !== 'null')
  if (branches.length !== 2 || rest.length !== 1)
    throw new Error('schema: only ["null", T] unions are supported')
  const inner = convert(rest[0], bounds, ns, defs)
  if (typeof inner.type === 'string' && inner.anyOf === undefined)
    return { ...inner, type: ['null', inner.type] }
  return { anyOf: [{ type: 'null' }, inner] }
}

function pickBounds(node: Node): Node {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(node)) if (key.startsWith('adgate.')) out[key] = node[key]
  return out as Node
}

function optional(key: string, value: unknown): Record<string, unknown> {
  return value === undefined ? {} : { [key]: value }
}
