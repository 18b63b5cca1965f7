import { isUtf8 } from 'node:buffer'
import avro from 'avsc'
import { avroType } from '../events/avro-types.js'

/**
 * avsc reads an array or map block by looping over its item count, and only notices the input
 * ran out after the loop: a few bytes claiming 2^40 items hang the thread (and an array count
 * also allocates). Every item of an array or map in the schemas adgate reads takes at least one
 * byte (map keys are strings), so a block count larger than the bytes left is corrupt; the types
 * built here refuse it before looping. (A writer array of zero-byte items, such as nulls, with
 * more items than bytes left is refused too; no event schema has one. So are more items in all
 * than the data has bytes: see limitAvroItems.)
 *
 * avsc's resolvers read arrays and maps with the reader type's `_read`, and skip fields the
 * reader does not know with the writer type's `_skip`, so both are bounded.
 *
 * Strings (and map keys) are checked to be UTF-8 as they are read, the same check JSON and CSV
 * bodies get: avsc would otherwise replace bad bytes, or a reused record would carry them to Kafka.
 */
interface Tap {
  buf: Buffer
  pos: number
  readLong(): number
  skipLong(): void
}

interface Inner {
  _read(tap: Tap): unknown
  _skip(tap: Tap): void
}

/** avsc's forSchema, with every array and map count bounded by the bytes left. */
export function boundedType(schema: avro.Schema): avro.Type {
  return avro.Type.forSchema(schema, { typeHook })
}

/**
 * The same, with optional fields read by generated code (events/avro-types.ts): for adgate's own
 * schemas, built once per thread. Writer schemas sent by clients stay plain boundedType, so each
 * new one costs what avsc's compile costs and no more.
 */
export function boundedReaderType(schema: avro.Schema): avro.Type {
  return avroType(schema, typeHook)
}

function typeHook(schema: avro.Schema, opts: avro.ForSchemaOptions): avro.Type | undefined {
  if (schema === 'string') return new Utf8StringType()
  if (schema === 'bytes') return new BoundedBytesType()
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined
  const { type, logicalType } = schema as { type?: unknown; logicalType?: unknown }
  if (type === 'array') return new BoundedArrayType(schema, opts)
  if (type === 'map') return new BoundedMapType(schema, opts)
  if (type === 'string') return new Utf8StringType()
  if (type === 'bytes' && logicalType === undefined) return new BoundedBytesType()
  return undefined
}

/** A string the body holds that is not UTF-8; decodeAvro answers it as JSON and CSV do (400). */
export class InvalidUtf8Error extends Error {}

// Buffer's own slice decoder, without toString's argument handling (hot: once per string read).
const utf8Slice = (
  Buffer.prototype as unknown as { utf8Slice: (this: Buffer, start: number, end: number) => string }
).utf8Slice

/**
 * The length before a string's or bytes' content. avsc adds a negative one to its position, so a
 * few bytes could send a map's reader back over the entries it had read, round and round for ever
 * (a fuzzed container header did): refused instead.
 */
function readLength(tap: Tap): number {
  const at = tap.pos
  const len = tap.readLong()
  if (len < 0) throw new Error(`a negative length (${len}) at byte ${at}`)
  return len
}

function skipLengthAndContent(tap: Tap): void {
  const len = readLength(tap) // first: `tap.pos += readLength(tap)` would add to the pos before it
  tap.pos += len
}

function readUtf8(tap: Tap): string {
  const len = readLength(tap)
  const start = tap.pos
  tap.pos += len
  // As avsc's readString: running past the end is reported by the caller as a negative offset.
  if (tap.pos > tap.buf.length) return ''
  const text = utf8Slice.call(tap.buf, start, tap.pos)
  // Decoding turns every invalid sequence into U+FFFD (WHATWG UTF-8 decode), so only text holding
  // one can come from bytes that are not UTF-8: the bytes are checked then, not for every string.
  if (text.indexOf('\uFFFD') !== -1 && !isUtf8(tap.buf.subarray(start, tap.pos)))
    throw new InvalidUtf8Error(`a string at byte ${start} is not valid UTF-8`)
  return text
}

class Utf8StringType extends avro.types.StringType {
  _read(tap: Tap): string {
    return readUtf8(tap)
  }

  _skip(tap: Tap): void {
    skipLengthAndContent(tap)
  }
}

class BoundedBytesType extends avro.types.BytesType {
  _read(tap: Tap): Buffer | undefined {
    const len = readLength(tap)
    const start = tap.pos
    tap.pos += len
    // As avsc's readBytes: past the end, the caller sees a negative offset.
    return tap.pos > tap.buf.length ? undefined : tap.buf.subarray(start, tap.pos)
  }

  _skip(tap: Tap): void {
    skipLengthAndContent(tap)
  }
}

/**
 * Items the arrays and maps may still read or skip, across blocks and records. The bound per block
 * count does not bound items of zero bytes (nulls, empty records) in a client's writer schema:
 * block after block could claim the same bytes again, work quadratic in the body. decodeAvro
 * limits a container block's records to twice its bytes (the reader and the writer read each
 * record once); other readers (adgate's own records) are unlimited.
 */
let itemsLeft = Number.POSITIVE_INFINITY

export function limitAvroItems(items: number): void {
  itemsLeft = items
}

export function unlimitAvroItems(): void {
  itemsLeft = Number.POSITIVE_INFINITY
}

function checkCount(n: number, tap: Tap): void {
  if (n > tap.buf.length - tap.pos) throw new Error(`a block of ${n} items runs past the end of the data`)
  itemsLeft -= n
  if (itemsLeft < 0) throw new Error('its arrays and maps claim more items than the data has bytes')
}

// A negative count is followed by the block's size in bytes (Avro spec, "Complex Types").
function readCount(tap: Tap): number {
  let n = tap.readLong()
  if (n < 0) {
    n = -n
    tap.skipLong()
  }
  checkCount(n, tap)
  return n
}

// When skipping, a block with a byte size is skipped whole (-1).
function skipCount(tap: Tap): number {
  const n = tap.readLong()
  if (n >= 0) {
    checkCount(n, tap)
    return n
  }
  const size = tap.readLong()
  if (size < 0 || size > tap.buf.length - tap.pos) throw new Error(`a block of ${size} bytes is out of range`)
  tap.pos += size
  return -1
}

class BoundedArrayType extends avro.types.ArrayType {
  _read(tap: Tap): unknown[] {
    const items = this.itemsType as unknown as Inner
    const out: unknown[] = []
    for (let n = readCount(tap); n !== 0; n = readCount(tap)) while (n--) out.push(items._read(tap))
    return out
  }

  _skip(tap: Tap): void {
    const items = this.itemsType as unknown as Inner
    for (let n = skipCount(tap); n !== 0; n = skipCount(tap)) for (let i = 0; i < n; i++) items._skip(tap)
  }
}

class BoundedMapType extends avro.types.MapType {
  _read(tap: Tap): Record<string, unknown> {
    const values = this.valuesType as Inner
    const out: Record<string, unknown> = {}
    for (let n = readCount(tap); n !== 0; n = readCount(tap)) {
      while (n--) {
        const key = readUtf8(tap)
        out[key] = values._read(tap)
      }
    }
    return out
  }

  _skip(tap: Tap): void {
    const values = this.valuesType as Inner
    for (let n = skipCount(tap); n !== 0; n = skipCount(tap)) {
      for (let i = 0; i < n; i++) {
        skipLengthAndContent(tap) // the key
        values._skip(tap)
      }
    }
  }
}
