// The producer's wire pieces, checked against published vectors and @platformatic/kafka's own
// implementations (the client every other adgate role uses).
import {
  Writer as KafkaWriter,
  murmur2 as platformaticMurmur2,
  Reader,
  readRecordsBatch,
} from '@platformatic/kafka'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { crc32c, crc32cAfterChange, crc32cIsNative, crc32cJs } from '../../kafka/protocol/crc32c.js'
import { murmur2, partitionFor } from '../../kafka/protocol/murmur2.js'
import { decodeRecordBatch, encodeHeaders, RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'
import { Writer } from '../../kafka/protocol/writer.js'
import { runs } from '../support/runs.js'

describe('crc32c', () => {
  it.each([
    ['native', crc32c],
    ['JS', crc32cJs],
  ])(
    '%s: matches the RFC 3720 check value and the bytewise definition, over a whole buffer or a range',
    (_, crc) => {
      expect(crc(Buffer.from('123456789'))).toBe(0xe3069283)
      expect(crc(Buffer.alloc(32, 0))).toBe(0x8a9136aa) // RFC 3720 B.4: 32 bytes of zeros
      const bytewise = (bytes: Uint8Array) => {
        let c = -1
        for (const b of bytes) {
          c ^= b
          for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
        }
        return (c ^ -1) >>> 0
      }
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (bytes, a, b) => {
          expect(crc(bytes)).toBe(bytewise(bytes))
          const start = a % (bytes.length + 1)
          const end = start + (b % (bytes.length - start + 1))
          expect(crc(bytes, start, end)).toBe(bytewise(bytes.subarray(start, end)))
        }),
      )
    },
  )

  it('uses the CPU instruction through @node-rs/crc32 here (the JS loop is 4–6× slower on batches)', () => {
    expect(crc32cIsNative).toBe(true)
  })

  it('updated for a changed range equals the CRC computed again over the whole range', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 70_000 }),
        fc.nat(),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 16 }),
        (bytes, a, b, change) => {
          const buf = Buffer.from(bytes)
          const end = buf.length
          const start = a % end
          const from = start + (b % (end - start))
          const to = Math.min(end, from + change.length)
          const crc = crc32c(buf, start, end)
          const old = Buffer.from(buf.subarray(from, to))
          buf.set(change.subarray(0, to - from), from)
          expect(crc32cAfterChange(crc, buf, from, to, old, end)).toBe(crc32c(buf, start, end))
        },
      ),
      { numRuns: runs(300) },
    )
  })
})

describe('murmur2 partitioner', () => {
  it('agrees with platformatic (which follows the Java client) on every key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        expect(murmur2(bytes)).toBe(platformaticMurmur2(Buffer.from(bytes)))
      }),
      { numRuns: runs(2000) },
    )
    // Java: Utils.toPositive(Utils.murmur2("auc-1".getBytes())) % 4
    expect(partitionFor(Buffer.from('auc-1'), 4)).toBe(
      (platformaticMurmur2(Buffer.from('auc-1')) & 0x7fffffff) % 4,
    )
  })
})

describe('writer', () => {
  it('writes Kafka zig-zag varints and varlongs', () => {
    const cases: [number, number[]][] = [
      [0, [0]],
      [-1, [1]],
      [1, [2]],
      [63, [126]],
      [-64, [127]],
      [64, [128, 1]],
      [300, [216, 4]],
    ]
    for (const [v, bytes] of cases) expect([...new Writer(8).varint(v).result()]).toEqual(bytes)
    // zig-zag(2^40) = 2^41: five 7-bit groups of zeros, then 2^(41-35) = 64
    expect([...new Writer(8).varlong(2 ** 40).result()]).toEqual([128, 128, 128, 128, 128, 64])
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.maxSafeInteger(), (i, l) => {
        expect(Buffer.from(new Writer(8).varint(i).result())).toEqual(
          KafkaWriter.create().appendVarInt(i).buffer,
        )
        // Not platformatic's appendVarInt64: 1.35 writes 2^31 as [1].
        expect([...new Writer(8).varlong(l).result()]).toEqual(varlongByDefinition(BigInt(l)))
      }),
    )
  })
})

/** Kafka's varlong as its definition says: zig-zag over 64 bits, then 7 bits a byte, low first. */
function varlongByDefinition(l: bigint): number[] {
  let z = BigInt.asUintN(64, (l << 1n) ^ (l >> 63n))
  const out: number[] = []
  for (; z >= 0x80n; z >>= 7n) out.push(Number(z & 0x7fn) | 0x80)
  out.push(Number(z))
  return out
}

/** Records as the gateway writes them: optional string keys, binary values. */
const recordsArb = fc.array(
  fc.record({ key: fc.option(fc.string({ maxLength: 20 })), value: fc.uint8Array({ maxLength: 400 }) }),
  { minLength: 1, maxLength: 60 },
)

describe('record batches', () => {
  it('decode with platformatic: keys, values, headers and offsets intact, CRC and LZ4 valid', () => {
    fc.assert(
      fc.property(recordsArb, (records) => {
        const builder = new RecordBatchBuilder()
        const headers = encodeHeaders({ 'adgate.source': 'src', 'adgate.request_id': 'r-1' })
        for (const r of records)
          builder.add('t', 0, r.key === null ? null : Buffer.from(r.key), r.value, headers)
        const { buffer, batches } = builder.finish(1_700_000_000_000)
        expect(batches).toHaveLength(1)
        const decoded = readRecordsBatch(Reader.from(buffer.subarray(batches[0]!.offset)))
        expect(decoded.attributes & 7).toBe(3) // LZ4
        expect(
          decoded.records.map((r) => [
            r.key === null ? null : r.key.toString(),
            r.value,
            decoded.firstOffset + BigInt(r.offsetDelta),
          ]),
        ).toEqual(records.map((r, i) => [r.key, Buffer.from(r.value), BigInt(i)]))
        const [name, value] = decoded.records[0]!.headers[0]!
        expect([name?.toString(), value?.toString()]).toEqual(['adgate.source', 'src'])
        const b = buffer.subarray(batches[0]!.offset, batches[0]!.offset + batches[0]!.length)
        expect(b.readUInt32BE(17)).toBe(crc32c(b, 21))
      }),
      { numRuns: runs(100) },
    )
  })

  it('reads back what it writes (the spool hands batches to the embedded correlator)', () => {
    fc.assert(
      fc.property(
        recordsArb,
        fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 30 }), { maxKeys: 4 }),
        (records, headerMap) => {
          const builder = new RecordBatchBuilder()
          for (const r of records) {
            builder.add('t', 3, r.key === null ? null : Buffer.from(r.key), r.value, encodeHeaders(headerMap))
          }
          const { buffer, batches } = builder.finish(1_700_000_000_000)
          const decoded = decodeRecordBatch(
            buffer.subarray(batches[0]!.offset, batches[0]!.offset + batches[0]!.length),
          )
          expect(decoded.firstTimestamp).toBe(1_700_000_000_000)
          expect(
            decoded.records.map((r) => [r.offsetDelta, r.key?.toString() ?? null, Buffer.from(r.value)]),
          ).toEqual(records.map((r, i) => [i, r.key, Buffer.from(r.value)]))
        },
      ),
    )
  })

  it('keeps one batch per partition and reuses its buffers across finishes', () => {
    const builder = new RecordBatchBuilder()
    builder.add('a', 0, null, Buffer.from('x'), encodeHeaders({}))
    builder.add('a', 1, null, Buffer.from('y'), encodeHeaders({}))
    builder.add('a', 0, null, Buffer.from('z'), encodeHeaders({}))
    expect(builder.finish(1).batches.map((b) => [b.partition, b.records])).toEqual([
      [0, 2],
      [1, 1],
    ])
    expect(builder.finish(1).batches).toEqual([])
  })
})
