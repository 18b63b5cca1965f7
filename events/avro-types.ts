import avro from 'avsc'

type TypeHook = (schema: avro.Schema, opts: avro.ForSchemaOptions) => avro.Type | undefined

/**
 * avsc's forSchema, with every optional field (a `["null", T]` union) read and written by code
 * generated for that one union. avsc's own union methods are shared by every union: the branch
 * call inside them sees every branch type of the schema and turns megamorphic, and writing asks
 * each value for its type bucket first. The OpenRTB bid schema has about 400 optional fields,
 * where that was a third of the time spent encoding a bid. Bytes and values are avsc's; a value
 * of the wrong kind still gets avsc's own error.
 *
 * `hook` is another typeHook (decoders/avro-bounds.ts) tried first for every other schema.
 */
export function avroType(schema: avro.Schema, hook?: TypeHook): avro.Type {
  const typeHook: TypeHook = (s, opts) => {
    if (Array.isArray(s)) return nullableType(s, opts)
    return hook?.(s, opts)
  }
  return avro.Type.forSchema(schema, { typeHook })
}

interface Branch {
  readonly typeName: string
}

const UnwrappedUnionType = avro.types.UnwrappedUnionType as unknown as new (
  types: avro.Type[],
  opts: avro.ForSchemaOptions,
) => avro.Type

// A value matching the branch's bucket, as avsc's unwrapped unions tell branches apart.
const BUCKET_TESTS: Record<string, string> = {
  double: 'typeof v === "number"',
  float: 'typeof v === "number"',
  int: 'typeof v === "number"',
  long: 'typeof v === "number"',
  string: 'typeof v === "string"',
  enum: 'typeof v === "string"',
  boolean: 'typeof v === "boolean"',
  array: 'Array.isArray(v)',
  bytes: 'Buffer.isBuffer(v)',
  fixed: 'Buffer.isBuffer(v)',
  record: 'typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v)',
  map: 'typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v)',
}

function nullableType(schema: avro.Schema[], opts: avro.ForSchemaOptions): avro.Type | undefined {
  if (schema.length !== 2) return undefined
  const types = schema.map((s) => avro.Type.forSchema(s, opts))
  const nullAt = types.findIndex((t) => t.typeName === 'null')
  const valueAt = 1 - nullAt
  const test = BUCKET_TESTS[(types[valueAt] as unknown as Branch).typeName]
  if (nullAt < 0 || test === undefined) return new UnwrappedUnionType(types, opts)
  // One class per union, its methods compiled from their own source: each call site below then
  // only ever sees this union's branch type.
  const generic = avro.types.UnwrappedUnionType.prototype as unknown as {
    _write(this: avro.Type, tap: unknown, v: unknown): void
  }
  const NullableType = new Function(
    'Base',
    'generic',
    `return class NullableType extends Base {
      _read(tap) {
        const i = tap.readLong()
        if (i === ${nullAt}) return null
        if (i === ${valueAt}) return this.types[${valueAt}]._read(tap)
        throw new Error("invalid union index: " + i)
      }
      _write(tap, v) {
        if (v === null) tap.writeLong(${nullAt})
        else if (${test}) {
          tap.writeLong(${valueAt})
          this.types[${valueAt}]._write(tap, v)
        } else generic._write.call(this, tap, v)
      }
    }`,
  )(UnwrappedUnionType, generic) as typeof UnwrappedUnionType
  return new NullableType(types, opts)
}
