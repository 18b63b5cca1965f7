import type { RecordNode, SchemaNode } from './schema-model.js'

/**
 * A canonical event (or a part of it) → the JSON its sender posts: the inverse of the json-mode
 * normalizer (decoders/normalize.ts). JSON-text fields (ext) become the objects they hold; fields
 * adgate fills in (micros, the rest field) are left out; in records with a rest field (OpenRTB
 * objects) a null optional field was absent, and the rest field's keys — fields the schema does
 * not model, explicit nulls — are put back. So a request read back from Kafka equals the posted one
 * (JSON numbers beyond a double's precision aside: JSON.parse has already rounded them).
 */
export function eventToJson(model: RecordNode, event: object): Record<string, unknown> {
  return recordToJson(model, event as Record<string, unknown>)
}

function recordToJson(model: RecordNode, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const rest = model.fields.find((f) => f.role === 'rest')
  for (const f of model.fields) {
    if (f.role === 'rest' || f.role === 'micros') continue
    const v = value[f.name]
    if (v === null && rest !== undefined) continue
    out[f.name] = toJson(f.node, v)
  }
  const text = rest === undefined ? null : value[rest.name]
  if (typeof text === 'string')
    // defineProperty, not assignment: a "__proto__" key the sender posted stays a key.
    for (const [k, v] of Object.entries(JSON.parse(text) as object))
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  return out
}

function toJson(node: SchemaNode, value: unknown): unknown {
  if (value === null || value === undefined) return value
  switch (node.kind) {
    case 'optional':
      return toJson(node.inner, value)
    case 'record':
      return recordToJson(node, value as Record<string, unknown>)
    case 'array':
      return (value as unknown[]).map((x) => toJson(node.items, x))
    case 'map':
      return Object.fromEntries(Object.entries(value as object).map(([k, x]) => [k, toJson(node.values, x)]))
    case 'string':
      return node.json ? JSON.parse(value as string) : value
    default:
      return value
  }
}
