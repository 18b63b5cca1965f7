import avro from 'avsc'
import type { FieldModel, RecordNode, SchemaNode } from '../events/schema-model.js'
import { memoized } from './memo.js'
import { restText, type Violation } from './normalize.js'

/**
 * Fields a writer schema has and adgate's does not (a newer producer, a richer OpenRTB schema),
 * at any depth. avsc's resolver skips them, so a record is also read with the writer's own type
 * and each of its records' extra fields is put where JSON input puts the keys no field models:
 * the record's rest field (_unknown), as JSON text, in the writer's field order. Only writer
 * schemas naming such fields pay the second read; adgate's own schema keeps its direct path.
 *
 * Where the model has no rest field the fields are either added to the record as keys (`asKeys`:
 * bid v1 records, upcast and then normalized as JSON input) or, as for JSON input, not kept.
 */

/**
 * Whether `writer` names a field, at any depth, that `reader` does not. False for a writer with a
 * union avsc reads wrapped ({"branch": value}: two records, int and long...) where the reader has
 * a field: its values would not line up with the reader's, so such a writer's extra fields are not
 * kept (README, Encodings). Under a field only the writer has, a wrapped union is kept as Avro's
 * JSON encoding writes it.
 */
export function namesUnknownFields(writer: avro.Type, reader: SchemaNode): boolean {
  return walkTypes(writer, reader, new Set(), 'unknown') && !walkTypes(writer, reader, new Set(), 'wrapped')
}

/** Walks the writer's types beside the reader's model; true when `find` is met at some field. */
function walkTypes(
  writer: avro.Type,
  reader: SchemaNode,
  seen: Set<avro.Type>,
  find: 'unknown' | 'wrapped',
): boolean {
  if (reader.kind === 'optional') return walkTypes(writer, reader.inner, seen, find)
  if (writer instanceof avro.types.WrappedUnionType && find === 'wrapped') return true
  if (writer instanceof avro.types.UnwrappedUnionType || writer instanceof avro.types.WrappedUnionType)
    return writer.types.some((t) => walkTypes(t, reader, seen, find))
  switch (reader.kind) {
    case 'record': {
      if (!(writer instanceof avro.types.RecordType) || seen.has(writer)) return false
      seen.add(writer) // a recursive writer record is walked once
      return writer.fields.some((wf) => {
        const known = reader.fields.find((f) => f.name === wf.name)
        if (known === undefined) return find === 'unknown'
        return walkTypes(wf.type, known.node, seen, find)
      })
    }
    case 'array':
      return writer instanceof avro.types.ArrayType && walkTypes(writer.itemsType, reader.items, seen, find)
    case 'map':
      return writer instanceof avro.types.MapType && walkTypes(writer.valuesType, reader.values, seen, find)
    default:
      return false
  }
}

type Row = Record<string, unknown>

/**
 * Keeps the writer-only fields of `written` (the record read with the writer's type) in `read`
 * (the same record read through the resolver, in `model`'s shape). A Violation when a rest field
 * would break its bounds, as the same fields posted as JSON would.
 */
export function keepUnknownFields(
  model: RecordNode,
  read: unknown,
  written: unknown,
  asKeys: boolean,
): Violation | undefined {
  return walk(model, read, written, asKeys, [])
}

// `path` holds the segments down to the value (joined only for a Violation).
function walk(
  node: SchemaNode,
  read: unknown,
  written: unknown,
  asKeys: boolean,
  path: string[],
): Violation | undefined {
  if (read === null || read === undefined || written === null || typeof written !== 'object') return undefined
  switch (node.kind) {
    case 'optional':
      return walk(node.inner, read, written, asKeys, path)
    case 'record':
      return record(node, read as Row, written as Row, asKeys, path)
    case 'array': {
      const items = read as unknown[]
      for (let i = 0; i < items.length; i++) {
        path.push(`[${i}]`)
        const v = walk(node.items, items[i], (written as unknown[])[i], asKeys, path)
        path.pop()
        if (v) return v
      }
      return undefined
    }
    case 'map':
      for (const k of Object.keys(read as Row)) {
        path.push(k)
        const v = walk(node.values, (read as Row)[k], (written as Row)[k], asKeys, path)
        path.pop()
        if (v) return v
      }
      return undefined
    default:
      return undefined
  }
}

/** What the walk does with one writer record type read as one reader record (built once per pair). */
interface Plan {
  /** Fields only the writer has, in its order. */
  readonly extra: readonly string[]
  /** Fields both have whose values can hold records: the walk goes into those only. */
  readonly nested: readonly FieldModel[]
  readonly rest: FieldModel | undefined
}

const PLANS = new WeakMap<RecordNode, Map<avro.Type | undefined, Plan>>()

// `written` is an instance of the writer record's class (avsc): its constructor names the type.
function planOf(node: RecordNode, written: Row): Plan {
  const type = (written.constructor as { type?: avro.Type }).type
  return memoized(PLANS, node, type, () => plan(node, type, written))
}

/** Built once per pair; a `written` with no avsc type (none is expected) names its fields by its keys. */
function plan(node: RecordNode, type: avro.Type | undefined, written: Row): Plan {
  const names = type instanceof avro.types.RecordType ? type.fields.map((f) => f.name) : Object.keys(written)
  const known = new Map(node.fields.map((f) => [f.name, f]))
  return {
    extra: names.filter((n) => !known.has(n)),
    nested: names.flatMap((n) => {
      const f = known.get(n)
      return f !== undefined && holdsRecord(f.node) ? [f] : []
    }),
    rest: node.fields.find((f) => f.role === 'rest'),
  }
}

function holdsRecord(node: SchemaNode): boolean {
  switch (node.kind) {
    case 'record':
      return true
    case 'optional':
      return holdsRecord(node.inner)
    case 'array':
      return holdsRecord(node.items)
    case 'map':
      return holdsRecord(node.values)
    default:
      return false
  }
}

function record(
  node: RecordNode,
  read: Row,
  written: Row,
  asKeys: boolean,
  path: string[],
): Violation | undefined {
  const { extra: names, nested, rest } = planOf(node, written)
  for (const f of nested) {
    path.push(f.name)
    const v = walk(f.node, read[f.name], written[f.name], asKeys, path)
    path.pop()
    if (v) return v
  }
  if (names.length === 0) return undefined
  // A null-prototype object: a "__proto__" field stays a key.
  const extra = Object.create(null) as Row
  for (const k of names) extra[k] = plain(written[k])
  if (rest === undefined) {
    if (asKeys)
      for (const k of Object.keys(extra))
        Object.defineProperty(read, k, {
          value: extra[k],
          enumerable: true,
          writable: true,
          configurable: true,
        })
    return undefined
  }
  // The writer's own rest field (adgate's schema plus fields) holds fields kept before: they come first.
  const before = read[rest.name]
  const merged = typeof before === 'string' ? { ...restObject(before, rest.name), ...extra } : extra
  const text = restText(merged, fieldPath([...path, rest.name]))
  if (typeof text !== 'string') return text
  read[rest.name] = text
  return undefined
}

function fieldPath(segments: readonly string[]): string {
  return segments.reduce((out, s) => (out === '' || s.startsWith('[') ? out + s : `${out}.${s}`), '')
}

function restObject(text: string, name: string): Row {
  const out = Object.create(null) as Row
  try {
    const parsed = JSON.parse(text) as unknown
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
      return Object.assign(out, parsed)
  } catch {}
  // Not an object: kept whole, as JSON input posting the field would keep it.
  out[name] = text
  return out
}

/** A value read with the writer's type, as JSON: bytes and fixed as Avro's JSON encoding gives them (one char per byte). */
function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('latin1')
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(plain)
  const out: Row = {}
  for (const [k, x] of Object.entries(value))
    Object.defineProperty(out, k, { value: plain(x), enumerable: true, writable: true, configurable: true })
  return out
}
