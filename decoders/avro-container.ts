import { deflateRawSync, inflateRawSync } from 'node:zlib'
import avro from 'avsc'
import { boundedType } from './avro-bounds.js'

/**
 * Avro Object Container Files (Avro spec, "Object Container Files"):
 *
 *   header  "Obj" 0x01, metadata map<bytes> (avro.schema, avro.codec), 16-byte sync marker
 *   block*  record count (long), byte size (long), records (codec-compressed), sync marker
 *
 * Read synchronously from one buffer (request bodies are whole), with every length checked
 * against what is left, so a hostile file can neither over-read nor make us allocate without bound.
 */
const MAGIC = Buffer.from('Obj\x01', 'latin1')
// Declaration mirrored in test/support/avro.ts: the test's own copy of the spec's header schema, as an oracle.
/** The header as an Avro record, as the spec declares it (the bench's avsc baseline reads it too). */
export const CONTAINER_HEADER_SCHEMA: avro.Schema = {
  type: 'record',
  name: 'Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
}
const HEADER = boundedType(CONTAINER_HEADER_SCHEMA)
const LONG = avro.Type.forSchema('long')

export const SUPPORTED_CODECS = ['null', 'deflate'] as const

export interface ContainerHeader {
  writerSchema: string
  codec: string
  sync: Buffer
  /** Offset of the first block. */
  end: number
}

export type ContainerError = { error: string; unsupportedCodec?: true; tooLarge?: true }

export function readHeader(buf: Buffer): ContainerHeader | ContainerError {
  if (buf.length < 4 || !buf.subarray(0, 4).equals(MAGIC))
    return { error: 'not an Avro object container file' }
  let decoded: { value: { meta: Record<string, Buffer>; sync: Buffer }; offset: number }
  try {
    decoded = HEADER.decode(buf, 0) as typeof decoded
  } catch (err) {
    return { error: `corrupt container header: ${(err as Error).message}` }
  }
  if (decoded.offset < 0) return { error: 'truncated container header' }
  const schema = decoded.value.meta['avro.schema']
  if (!schema) return { error: 'container header has no avro.schema' }
  const codec = decoded.value.meta['avro.codec']?.toString() || 'null'
  if (!(SUPPORTED_CODECS as readonly string[]).includes(codec)) {
    return {
      error: `codec ${codec} is not supported (use ${SUPPORTED_CODECS.join(' or ')})`,
      unsupportedCodec: true,
    }
  }
  return { writerSchema: schema.toString(), codec, sync: decoded.value.sync, end: decoded.offset }
}

export interface Block {
  count: number
  /** Uncompressed record bytes. */
  data: Buffer
  /** Offset of the next block. */
  end: number
}

/** One block at `pos`. `maxBytes` bounds the inflated size (a deflate bomb gets an error, not memory). */
export function readBlock(
  buf: Buffer,
  pos: number,
  header: ContainerHeader,
  maxBytes: number,
): Block | ContainerError {
  const count = decodeLong(buf, pos)
  if (count.offset < 0) return { error: `truncated or corrupt block header at byte ${pos}` }
  const size = decodeLong(buf, count.offset)
  if (size.offset < 0) return { error: `truncated or corrupt block header at byte ${pos}` }
  const n = count.value as number
  const len = size.value as number
  if (n < 0 || len < 0 || size.offset + len + 16 > buf.length)
    return { error: `truncated or corrupt block at byte ${pos}` }
  const raw = buf.subarray(size.offset, size.offset + len)
  if (!buf.subarray(size.offset + len, size.offset + len + 16).equals(header.sync)) {
    return { error: `sync marker mismatch after block at byte ${pos}` }
  }
  let data = raw
  if (header.codec === 'deflate') {
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, maxBytes) })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        return { error: `block at byte ${pos} inflates past the ${maxBytes}-byte limit`, tooLarge: true }
      }
      return { error: `cannot inflate block at byte ${pos}: ${(err as Error).message}` }
    }
    if (data.length > maxBytes) {
      return { error: `block at byte ${pos} inflates past the ${maxBytes}-byte limit`, tooLarge: true }
    }
  }
  return { count: n, data, end: size.offset + len + 16 }
}

// avsc throws on a varint beyond 2^53 ("potential precision loss"); corrupt input must not throw.
function decodeLong(buf: Buffer, pos: number): { value: unknown; offset: number } {
  try {
    return LONG.decode(buf, pos)
  } catch {
    return { value: 0, offset: -1 }
  }
}

/** A container's header for this writer schema (a JSON string or object); no blocks follow it. */
export function writeContainerHeader(schema: unknown, codec: string, sync: Buffer): Buffer {
  const text = typeof schema === 'string' ? schema : JSON.stringify(schema)
  return HEADER.toBuffer({
    magic: MAGIC,
    meta: { 'avro.schema': Buffer.from(text), 'avro.codec': Buffer.from(codec) },
    sync,
  })
}

/** Write a container file (generator, tests, benchmarks): blocks of `blockSize` records. */
export function writeContainer(
  type: avro.Type,
  records: readonly unknown[],
  options: { codec?: 'null' | 'deflate'; blockSize?: number; sync?: Buffer } = {},
): Buffer {
  const codec = options.codec ?? 'null'
  const sync = options.sync ?? Buffer.from('adgate-sync-mark', 'latin1')
  const blockSize = options.blockSize ?? 1000
  const parts: Buffer[] = [writeContainerHeader(type.schema(), codec, sync)]
  for (let i = 0; i < records.length; i += blockSize) {
    const chunk = records.slice(i, i + blockSize)
    const body = Buffer.concat(chunk.map((r) => type.toBuffer(r)))
    const data = codec === 'deflate' ? deflateRawSync(body) : body
    parts.push(LONG.toBuffer(chunk.length), LONG.toBuffer(data.length), data, sync)
  }
  return Buffer.concat(parts)
}
