import type { RecordNode, SchemaNode } from '../events/schema-model.js'
import type { SchemaVersion } from '../events/schemas.js'
import { DEFAULT_JSON_TEXT_LENGTH, MAX_JSON_FIELD_DEPTH } from './normalize.js'

/**
 * The compact schema description the native transcoder (native/src/addon.cc) is built from, so
 * the C++ side holds no knowledge of any event schema: a new schema version needs no C++ change.
 *
 * It mirrors what decoders/normalize.ts checks in 'json' mode, for the values the native side may
 * accept on its own; everything else is "defer" and the JS normalizer decides (and words) it:
 *   nodes[i] = { kind, min?, max?, minLength?, maxLength?, minItems?, maxItems?, maxDepth?, inner?, symbols?, fields?, deferNull? }
 *   fields[j] = { name, node, default?: Buffer (the default's Avro bytes, by avsc), stamp?, rest? }
 * A record with a rest field (adgate.rest) keeps the keys it does not model and explicit nulls as
 * JSON text the JS normalizer writes: the addon defers an event holding either (`rest` marks the
 * field, `deferNull` the optional fields of such a record), and encodes the others with a null rest.
 */
export const Kind = {
  null: 0,
  boolean: 1,
  int: 2,
  long: 3,
  float: 4,
  double: 5,
  string: 6,
  enum: 7,
  array: 8,
  record: 9,
  optional: 10,
  defer: 11,
  /** adgate.json: an object or array the addon keeps as its text when that is JSON.stringify's. */
  jsonText: 12,
} as const

export const Stamp = { none: 0, ingestTime: 1, source: 2 } as const

export interface NodeDescription {
  kind: number
  min?: number
  max?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  maxItems?: number
  /** jsonText: the deepest nesting kept (the top value at depth 0). */
  maxDepth?: number
  inner?: number
  symbols?: string[]
  fields?: FieldDescription[]
  deferNull?: boolean
}

export interface FieldDescription {
  name: string
  node: number
  default?: Buffer
  stamp?: number
  rest?: boolean
  /** adgate.micros: never read from input; the index of the decimal field it is computed from (an earlier field). */
  microsOf?: number
}

export interface SchemaDescription {
  schemaId: number
  root: number
  /** Index of the top-level field whose UTF-8 bytes are the Kafka key (a required string). */
  keyField: number
  /**
   * A key inside a record (bids: request.id): the field index at each level, keyField's first.
   * The addon finds the key in each encoded event by skipping the fields before it.
   */
  keyPath: number[]
  nodes: NodeDescription[]
  /** Top-level field indexes whose values are returned per event (for data-quality rules). */
  projection?: number[]
}

/** Compile `schema` (an event schema version) for the native transcoder. */
export function describeSchema(
  schema: SchemaVersion,
  keyField: string,
  projection: readonly string[] = [],
): SchemaDescription {
  // A schema with an envelope (bids): the addon takes the envelope form, the body in its field;
  // the body alone, or an envelope without the fields adgate derives (an event id is a hash), has
  // no default for them and is deferred to the JS normalizer.
  const nodes: NodeDescription[] = []
  const records = new Map<RecordNode, number>()

  function add(node: NodeDescription): number {
    nodes.push(node)
    return nodes.length - 1
  }

  function compile(node: SchemaNode): number {
    switch (node.kind) {
      case 'optional': {
        const at = add({ kind: Kind.optional })
        nodes[at]!.inner = compile(node.inner)
        return at
      }
      case 'record': {
        const known = records.get(node)
        if (known !== undefined) return known
        const at = add({ kind: Kind.record, fields: [] })
        records.set(node, at)
        const closed = node.fields.some((f) => f.role === 'rest')
        nodes[at]!.fields = node.fields.map((f) => {
          const description: FieldDescription = { name: f.name, node: compile(f.node) }
          // Optional nodes are compiled per field (never shared), so the flag is this field's.
          if (closed && f.node.kind === 'optional') nodes[description.node]!.deferNull = true
          if (f.role === 'rest') description.rest = true
          if (f.role === 'micros') {
            const of = node.fields.findIndex((g) => g.name === f.microsOf)
            if (of < 0 || of >= node.fields.indexOf(f))
              throw new Error(`schema: ${f.name} must follow ${f.microsOf ?? 'its decimal'}`)
            description.microsOf = of
          }
          if (f.defaultBytes && f.role !== 'body') description.default = f.defaultBytes
          return description
        })
        return at
      }
      case 'enum':
        return add({ kind: Kind.enum, symbols: [...node.symbols] })
      case 'array': {
        const at = add({ kind: Kind.array })
        const n = nodes[at]!
        if (node.minItems !== undefined) n.minItems = node.minItems
        if (node.maxItems !== undefined) n.maxItems = node.maxItems
        n.inner = compile(node.items)
        return at
      }
      case 'map':
      case 'bytes':
        return add({ kind: Kind.defer })
      case 'string':
        // JSON-text fields (OpenRTB ext) hold JSON.stringify of the parsed value: the addon writes
        // an object or array whose text is already that, and defers the others.
        if (node.json)
          return add({
            kind: Kind.jsonText,
            maxLength: node.maxLength ?? DEFAULT_JSON_TEXT_LENGTH,
            maxDepth: MAX_JSON_FIELD_DEPTH,
          })
        return add({
          kind: Kind.string,
          ...(node.minLength === undefined ? {} : { minLength: node.minLength }),
          ...(node.maxLength === undefined ? {} : { maxLength: node.maxLength }),
        })
      case 'null':
        return add({ kind: Kind.null })
      case 'boolean':
        return add({ kind: Kind.boolean })
      default:
        return add({
          kind: Kind[node.kind],
          ...(node.min === undefined ? {} : { min: node.min }),
          ...(node.max === undefined ? {} : { max: node.max }),
        })
    }
  }

  const root = compile(schema.model)
  const fieldNames = schema.model.fields.map((f) => f.name)
  const rootFields = nodes[root]!.fields!
  // decoders/result.ts `stamp` overwrites these two after validation.
  for (const f of rootFields) {
    if (f.name === 'ingest_time') f.stamp = Stamp.ingestTime
    if (f.name === 'source') f.stamp = Stamp.source
  }
  const keyPath: number[] = []
  let record = nodes[root]!
  for (const name of keyField.split('.')) {
    const i = record.fields?.findIndex((f) => f.name === name) ?? -1
    if (i < 0) throw new Error(`schema: no key field ${keyField}`)
    keyPath.push(i)
    record = nodes[record.fields![i]!.node]!
  }
  if (record.kind !== Kind.string)
    throw new Error(`schema: the key field ${keyField} is not a required string`)
  const description: SchemaDescription = {
    schemaId: schema.id,
    root,
    keyField: keyPath[0]!,
    keyPath,
    nodes,
  }
  if (projection.length > 0) {
    description.projection = projection.map((name) => {
      const i = fieldNames.indexOf(name)
      if (i < 0) throw new Error(`projection: ${name} is not a field of ${schema.subject}`)
      if (!isScalar(nodes, rootFields[i]!.node))
        throw new Error(`projection: ${name} is not a scalar field (string, number, boolean, enum)`)
      return i
    })
  }
  return description
}

/** Scalars only in projections; float is left out (its Avro value is rounded to 32 bits). */
export function isScalar(nodes: readonly NodeDescription[], at: number): boolean {
  const n = nodes[at]!
  if (n.kind === Kind.optional) return isScalar(nodes, n.inner!)
  return (
    n.kind === Kind.null ||
    n.kind === Kind.boolean ||
    n.kind === Kind.int ||
    n.kind === Kind.long ||
    n.kind === Kind.double ||
    n.kind === Kind.string ||
    n.kind === Kind.enum
  )
}

type Reader = (buf: Buffer, pos: number) => unknown

// Buffer's own slice decoder, without toString's argument handling (hot: once per projected field).
const utf8Slice = (
  Buffer.prototype as unknown as { utf8Slice: (this: Buffer, s: number, e: number) => string }
).utf8Slice

/** A reader of the Avro value of scalar node `at` (a projected field in the native output). */
export function scalarReader(nodes: readonly NodeDescription[], at: number): Reader {
  const n = nodes[at]!
  switch (n.kind) {
    case Kind.optional: {
      const inner = scalarReader(nodes, n.inner!)
      return (buf, pos) => (buf[pos] === 0 ? null : inner(buf, pos + 1))
    }
    case Kind.null:
      return () => null
    case Kind.boolean:
      return (buf, pos) => buf[pos] === 1
    case Kind.int:
    case Kind.long:
      return readLong
    case Kind.double:
      return (buf, pos) => buf.readDoubleLE(pos)
    case Kind.string:
      return readString
    case Kind.enum: {
      const symbols = n.symbols!
      return (buf, pos) => symbols[readLong(buf, pos) as number]
    }
    default:
      return () => undefined
  }
}

/**
 * One view per accepted event: the projected fields by name, read from the native output at the
 * offsets the addon returned. Generated per projection so every view has one fixed shape.
 */
export function viewReader(
  names: readonly string[],
  readers: readonly Reader[],
): (buf: Buffer, offsets: Uint32Array, at: number) => Record<string, unknown> {
  const fields = names.map((name, i) => `${JSON.stringify(name)}: r[${i}](buf, offsets[at + ${i}])`)
  return new Function('r', `return function view(buf, offsets, at) { return { ${fields.join(', ')} } }`)(
    readers,
  ) as (buf: Buffer, offsets: Uint32Array, at: number) => Record<string, unknown>
}

/**
 * Where the last `varint` stopped: a module variable rather than a returned pair, so reading a
 * field allocates nothing (the same CPU as a copy of the loop in each reader, interleaved in one run).
 */
let varintEnd = 0

/** Avro's variable-length integer, still zigzag-encoded. */
function varint(buf: Buffer, pos: number): number {
  let n = 0
  let scale = 1
  for (;;) {
    const b = buf[pos++]!
    n += (b & 0x7f) * scale
    if (b < 0x80) break
    scale *= 128
  }
  varintEnd = pos
  return n
}

function readLong(buf: Buffer, pos: number): number {
  const n = varint(buf, pos)
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2
}

function readString(buf: Buffer, pos: number): string {
  const n = varint(buf, pos)
  const start = varintEnd
  return n / 2 <= INTERN_MAX_BYTES
    ? interned(buf, start, start + n / 2)
    : utf8Slice.call(buf, start, start + n / 2)
}

/**
 * Projected strings repeat (currencies, countries, domains): a short ASCII one is taken from a
 * per-thread cache of the last string seen in its slot (direct-mapped by its length and three of
 * its bytes), compared byte for byte, not made anew. Besides the allocation, the rules' Set and
 * Map lookups then find its hash already computed (a fresh string hashes on every lookup).
 */
const INTERN_MAX_BYTES = 32
const INTERN_SLOTS = 1024
const internedStrings: (string | undefined)[] = new Array(INTERN_SLOTS).fill(undefined)

function interned(buf: Buffer, start: number, end: number): string {
  const n = end - start
  if (n === 0) return ''
  const slot =
    (n * 0x9e5 + buf[start]! * 31 + buf[end - 1]! * 7 + buf[start + (n >> 1)]!) & (INTERN_SLOTS - 1)
  const s = internedStrings[slot]
  if (s !== undefined && s.length === n) {
    // A cached string is ASCII: a byte of a multi-byte character never equals one of its codes.
    let i = 0
    while (i < n && s.charCodeAt(i) === buf[start + i]) i++
    if (i === n) return s
  }
  const made = utf8Slice.call(buf, start, end)
  // As many UTF-16 units as bytes: ASCII (the bytes are valid UTF-8), the only strings cached.
  if (made.length === n) internedStrings[slot] = made
  return made
}
