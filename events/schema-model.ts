import avro from 'avsc'

/**
 * One description of an event schema, derived once from its .avsc file, that everything walking a
 * schema reads: the normalizer (decoders/normalize.ts), the native transcoder's description
 * (decoders/native-schema.ts), the data-quality rules' field check (quality/rules.ts) and the
 * bench's JSON Schema baseline (bench/lib/avro-json-schema.ts).
 *
 * avsc resolves the structure (named references, union branches, field defaults and their Avro
 * bytes); adgate's own attributes, which avsc does not keep, are read from the same JSON and
 * attached as bounds to the node they constrain:
 *   adgate.minLength / adgate.maxLength   strings (UTF-16 code units)
 *   adgate.min / adgate.max               numbers
 *   adgate.minItems / adgate.maxItems     arrays
 *   adgate.json                           string field holding JSON text; JSON input may give an object
 * A field's attributes apply to its type, through an optional (["null", T]) to T. Attributes of
 * the field itself (what adgate fills in rather than reads):
 *   adgate.rest      JSON text of the record's keys no other field models (and explicit nulls of
 *                    optional ones), so nothing a sender posts is dropped; never read from input
 *   adgate.micros    integer micros derived from the decimal sibling field it names; never read
 *   adgate.derived   may be left out of the input: the gateway derives it (result.ts `stamp`)
 *   adgate.body      the one field holding what a sender posts; the others are adgate's
 *                    envelope, which JSON and CSV senders may leave out entirely
 */
export type SchemaNode =
  | NullNode
  | BooleanNode
  | NumberNode
  | StringNode
  | BytesNode
  | EnumNode
  | ArrayNode
  | MapNode
  | OptionalNode
  | RecordNode

export interface NullNode {
  readonly kind: 'null'
}
export interface BooleanNode {
  readonly kind: 'boolean'
}
export interface NumberNode {
  readonly kind: 'int' | 'long' | 'float' | 'double'
  readonly min?: number
  readonly max?: number
  /** A long with logicalType timestamp-millis: JSON and CSV input may give ISO-8601 text. */
  readonly timestamp: boolean
}
export interface StringNode {
  readonly kind: 'string'
  readonly minLength?: number
  readonly maxLength?: number
  /** Holds JSON text (OpenRTB ext); JSON input may give an object or array. */
  readonly json: boolean
}
export interface BytesNode {
  readonly kind: 'bytes'
}
export interface EnumNode {
  readonly kind: 'enum'
  readonly name: string
  readonly symbols: readonly string[]
}
export interface ArrayNode {
  readonly kind: 'array'
  readonly items: SchemaNode
  readonly minItems?: number
  readonly maxItems?: number
}
export interface MapNode {
  readonly kind: 'map'
  readonly values: SchemaNode
}
/** ["null", T], the only union event schemas use. */
export interface OptionalNode {
  readonly kind: 'optional'
  readonly inner: SchemaNode
}
export interface RecordNode {
  readonly kind: 'record'
  /** Full name; a named record referenced twice is one node. */
  readonly name: string
  readonly fields: readonly FieldModel[]
}

export interface FieldModel {
  readonly name: string
  readonly node: SchemaNode
  /** Whether the field has a default (a field without one is required). */
  readonly hasDefault: boolean
  /** The default as avsc reads it (null for optional fields). */
  readonly default: unknown
  /** The default's Avro bytes exactly as avsc writes them. */
  readonly defaultBytes: Buffer | null
  /** What adgate fills in instead of reading it from input (see the attributes above). */
  readonly role: 'input' | 'rest' | 'micros' | 'derived' | 'body'
  /** For role 'micros': the sibling field holding the decimal. */
  readonly microsOf: string | null
}

type Bounds = Record<string, unknown>
type Json = Record<string, unknown> & { type: unknown }

/** The model of an event schema: `json` is the .avsc JSON, `type` avsc's type of it. */
export function schemaModel(
  json: unknown,
  type: avro.Type = avro.Type.forSchema(json as avro.Schema),
): RecordNode {
  const root = build(json, type, {}, new Map())
  if (root.kind !== 'record') throw new Error('schema: an event schema is a record')
  return root
}

function build(json: unknown, type: avro.Type, bounds: Bounds, records: Map<string, RecordNode>): SchemaNode {
  if (Array.isArray(json)) {
    const types = (type as unknown as { types: avro.Type[] }).types
    if (json.length !== 2 || json[0] !== 'null' || json[1] === 'null')
      throw new Error('schema: only ["null", T] unions are supported in event schemas')
    return { kind: 'optional', inner: build(json[1], types[1]!, bounds, records) }
  }
  if (typeof json === 'string') {
    // A named reference: avsc resolved it to the record or enum defined earlier.
    if (type.name !== undefined) {
      const record = records.get(type.name)
      if (record) return record
      if (type.typeName === 'enum') return enumNode(type)
    }
    return primitive(json, bounds, false)
  }
  const node = json as Json
  const merged = { ...bounds, ...attributes(node) }
  if (typeof node.type !== 'string') return build(node.type, type, merged, records)
  switch (node.type) {
    case 'record':
      return recordNode(node, type, records)
    case 'enum':
      return enumNode(type)
    case 'array':
      return {
        kind: 'array',
        items: build(node.items, (type as unknown as { itemsType: avro.Type }).itemsType, {}, records),
        ...numberAttribute('minItems', merged['adgate.minItems']),
        ...numberAttribute('maxItems', merged['adgate.maxItems']),
      }
    case 'map':
      return {
        kind: 'map',
        values: build(node.values, (type as unknown as { valuesType: avro.Type }).valuesType, {}, records),
      }
    case 'fixed':
      throw new Error('schema: fixed is not supported by adgate event schemas')
    default:
      return primitive(node.type, merged, node.logicalType === 'timestamp-millis')
  }
}

function recordNode(json: Json, type: avro.Type, records: Map<string, RecordNode>): RecordNode {
  const fields: FieldModel[] = []
  const record: RecordNode = { kind: 'record', name: type.name!, fields }
  records.set(type.name!, record) // before the fields, so a reference inside them resolves
  const jsonFields = json.fields as Json[]
  const avscFields = (type as unknown as { fields: { type: avro.Type; defaultValue(): unknown }[] }).fields
  jsonFields.forEach((f, i) => {
    const af = avscFields[i]!
    const hasDefault = 'default' in f
    const value = hasDefault ? af.defaultValue() : undefined
    const microsOf = typeof f['adgate.micros'] === 'string' ? f['adgate.micros'] : null
    fields.push({
      name: f.name as string,
      node: build(f.type, af.type, attributes(f), records),
      hasDefault,
      default: value,
      defaultBytes: hasDefault ? af.type.toBuffer(value) : null,
      role: f['adgate.rest']
        ? 'rest'
        : microsOf !== null
          ? 'micros'
          : f['adgate.derived']
            ? 'derived'
            : f['adgate.body']
              ? 'body'
              : 'input',
      microsOf,
    })
  })
  return record
}

function enumNode(type: avro.Type): EnumNode {
  return { kind: 'enum', name: type.name!, symbols: (type as unknown as { symbols: string[] }).symbols }
}

function primitive(name: string, b: Bounds, timestamp: boolean): SchemaNode {
  switch (name) {
    case 'null':
    case 'boolean':
    case 'bytes':
      return { kind: name }
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return {
        kind: name,
        timestamp,
        ...numberAttribute('min', b['adgate.min']),
        ...numberAttribute('max', b['adgate.max']),
      }
    case 'string':
      return {
        kind: 'string',
        json: b['adgate.json'] === true,
        ...numberAttribute('minLength', b['adgate.minLength']),
        ...numberAttribute('maxLength', b['adgate.maxLength']),
      }
    default:
      throw new Error(`schema: unsupported type ${name}`)
  }
}

function attributes(node: Record<string, unknown>): Bounds {
  const out: Bounds = {}
  for (const key of Object.keys(node)) if (key.startsWith('adgate.')) out[key] = node[key]
  return out
}

function numberAttribute(key: string, value: unknown): Record<string, number> {
  return typeof value === 'number' ? { [key]: value } : {}
}

/** The field holding what senders post (adgate.body), or null for a schema without an envelope. */
export function bodyField(model: RecordNode): FieldModel | null {
  return model.fields.find((f) => f.role === 'body') ?? null
}

/** The record a node holds (through an optional), or null. */
export function recordOf(node: SchemaNode): RecordNode | null {
  if (node.kind === 'optional') return recordOf(node.inner)
  return node.kind === 'record' ? node : null
}
