import type { NumberNode, RecordNode, SchemaNode } from '../../events/schema-model.js'

/**
 * An event schema's model (events/schema-model.ts) → JSON Schema (draft-07) for the same JSON input
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

export function avroToJsonSchema(model: RecordNode): JsonSchema {
  const definitions: Record<string, JsonSchema> = {}
  const root = convert(model, definitions)
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...root, definitions }
}

function convert(node: SchemaNode, defs: Record<string, JsonSchema>): JsonSchema {
  switch (node.kind) {
    case 'record': {
      if (!defs[node.name]) {
        defs[node.name] = {} // registered before the fields so recursive references resolve
        const properties: Record<string, JsonSchema> = {}
        const required: string[] = []
        for (const f of node.fields) {
          properties[f.name] = convert(f.node, defs)
          if (!f.hasDefault) required.push(f.name)
        }
        defs[node.name] = { type: 'object', properties, ...(required.length > 0 ? { required } : {}) }
      }
      return { $ref: `#/definitions/${node.name}` }
    }
    case 'enum':
      defs[node.name] = { type: 'string', enum: node.symbols }
      return { $ref: `#/definitions/${node.name}` }
    case 'optional': {
      // Folded into T's own `type` when T is a plain typed schema (cheaper to validate).
      const inner = convert(node.inner, defs)
      if (typeof inner.type === 'string' && inner.anyOf === undefined)
        return { ...inner, type: ['null', inner.type] }
      return { anyOf: [{ type: 'null' }, inner] }
    }
    case 'array':
      return {
        type: 'array',
        items: convert(node.items, defs),
        ...optional('minItems', node.minItems),
        ...optional('maxItems', node.maxItems),
      }
    case 'map':
      return { type: 'object', additionalProperties: convert(node.values, defs) }
    case 'null':
      return { type: 'null' }
    case 'boolean':
      return { type: 'boolean' }
    case 'int':
      return { type: 'integer', ...numberBounds(node, INT_RANGE) }
    case 'long': {
      const integer = { type: 'integer', ...numberBounds(node, LONG_RANGE) }
      return node.timestamp ? { anyOf: [integer, { type: 'string', pattern: ISO_TIME }] } : integer
    }
    case 'float':
    case 'double':
      return { type: 'number', ...optional('minimum', node.min), ...optional('maximum', node.max) }
    case 'string': {
      const text = {
        type: 'string',
        ...optional('minLength', node.minLength),
        ...optional('maxLength', node.maxLength),
      }
      return node.json ? { anyOf: [text, { type: ['object', 'array'] }] } : text
    }
    case 'bytes':
      return { not: {} } // JSON has no bytes; the normalizer refuses every JSON value here
  }
}

function numberBounds(node: NumberNode, range: { minimum: number; maximum: number }) {
  return {
    minimum: Math.max(range.minimum, node.min ?? range.minimum),
    maximum: Math.min(range.maximum, node.max ?? range.maximum),
  }
}

function optional(key: string, value: unknown): Record<string, unknown> {
  return value === undefined ? {} : { [key]: value }
}
