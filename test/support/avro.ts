import avro from 'avsc'

/**
 * Hand-built Avro object container files, for bodies writeContainer cannot make (other codecs,
 * arbitrary writer schemas, corrupt blocks). Written with avsc's own types and its own copy of the
 * spec's header schema, on purpose: an independent oracle for decoders/avro-container.ts.
 */
const HEADER = avro.Type.forSchema({
  type: 'record',
  name: 'Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
})
export const LONG = avro.Type.forSchema('long')
export const SYNC = Buffer.from('0123456789abcdef', 'latin1')

export interface Block {
  count: number
  /** The block's bytes as stored (already compressed for a compressing codec). */
  data: Buffer
}

export function containerHeader(schema: unknown, codec = 'null', sync = SYNC): Buffer {
  const meta: Record<string, Buffer> = {
    'avro.schema': Buffer.from(typeof schema === 'string' ? schema : JSON.stringify(schema)),
  }
  if (codec !== '') meta['avro.codec'] = Buffer.from(codec)
  return HEADER.toBuffer({ magic: Buffer.from('Obj\x01', 'latin1'), meta, sync })
}

export function block({ count, data }: Block, sync = SYNC): Buffer {
  return Buffer.concat([LONG.toBuffer(count), LONG.toBuffer(data.length), data, sync])
}

export function container(schema: unknown, blocks: Block[], codec = 'null'): Buffer {
  return Buffer.concat([containerHeader(schema, codec), ...blocks.map((b) => block(b))])
}

/** Records of one type, concatenated, as one uncompressed block. */
export function records(type: avro.Type, values: readonly unknown[]): Block {
  return { count: values.length, data: Buffer.concat(values.map((v) => type.toBuffer(v))) }
}

/** Avro's zig-zag varint of a number beyond what avsc's long encoder accepts. */
export function varint(n: bigint): Buffer {
  let z = n >= 0n ? n << 1n : (-n << 1n) - 1n
  const out: number[] = []
  do {
    let b = Number(z & 0x7fn)
    z >>= 7n
    if (z > 0n) b |= 0x80
    out.push(b)
  } while (z > 0n)
  return Buffer.from(out)
}
