// Merged record batches (kafka/protocol/batch-merge.ts), read back by @platformatic/kafka's reader
// (as the correlator and the Java broker would): offsets consecutive from 0, timestamps and bytes kept.

import { randomBytes } from 'node:crypto'
import { Reader, readRecordsBatch } from '@platformatic/kafka'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  mergeRecordBatches,
  mergeRecordBatchGroups,
  mergesOffThread,
} from '../../kafka/protocol/batch-merge.js'
import { crc32c } from '../../kafka/protocol/crc32c.js'
import { encodeHeaders, RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'
import { runs } from '../support/runs.js'

const recordArb = fc.record({
  key: fc.option(fc.string({ maxLength: 20 })),
  value: fc.uint8Array({ maxLength: 300 }),
})
const batchArb = fc.record({
  records: fc.array(recordArb, { minLength: 1, maxLength: 40 }),
  // Milliseconds from the first batch's timestamp: later and earlier batches both merge.
  timestamp: fc.integer({ min: -100_000, max: 100_000 }),
})

function encoded(records: readonly { key: string | null; value: Uint8Array }[], timestamp: number): Buffer {
  const builder = new RecordBatchBuilder()
  const headers = encodeHeaders({ 'adgate.request_id': `r-${timestamp}` })
  for (const r of records) builder.add('t', 0, r.key === null ? null : Buffer.from(r.key), r.value, headers)
  const { buffer, batches } = builder.finish(timestamp)
  return Buffer.from(buffer.subarray(0, batches[0]!.length))
}

describe('merging record batches', () => {
  it('one batch of every record in order, offsets 0…n-1, each record its own timestamp, CRC valid', () => {
    fc.assert(
      fc.property(fc.array(batchArb, { minLength: 2, maxLength: 5 }), (sets) => {
        const base = 1_700_000_000_000
        const inputs = sets.map((s) => encoded(s.records, base + s.timestamp))
        const merged = mergeRecordBatches(inputs)!
        expect(merged).not.toBeNull()
        expect(merged.readUInt32BE(17)).toBe(crc32c(merged, 21))
        const decoded = readRecordsBatch(Reader.from(merged))
        const expected = sets.flatMap((s) =>
          s.records.map((r) => [r.key, Buffer.from(r.value), base + s.timestamp, `r-${base + s.timestamp}`]),
        )
        expect(decoded.lastOffsetDelta).toBe(expected.length - 1)
        expect(decoded.records.map((r) => r.offsetDelta)).toEqual(expected.map((_, i) => i))
        expect(
          decoded.records.map((r) => [
            r.key === null ? null : r.key.toString(),
            r.value,
            Number(decoded.firstTimestamp + BigInt(r.timestampDelta)),
            r.headers[0]![1]!.toString(),
          ]),
        ).toEqual(expected)
        expect(Number(decoded.maxTimestamp)).toBe(Math.max(...sets.map((s) => base + s.timestamp)))
      }),
      { numRuns: runs(60) },
    )
  })

  it('records past one 64 KiB LZ4 block, and offsets whose varint grows (past 63, 8191)', () => {
    const big = [0, 1, 2].map(() => ({ key: 'k', value: randomBytes(70_000) }))
    const many = Array.from({ length: 9000 }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`) }))
    const merged = mergeRecordBatches([encoded(big, 5), encoded(many, 7), encoded(big, 6)])!
    const decoded = readRecordsBatch(Reader.from(merged))
    expect(decoded.records.map((r) => r.offsetDelta)).toEqual(Array.from({ length: 9006 }, (_, i) => i))
    expect(decoded.records.map((r) => r.value)).toEqual(
      [...big, ...many, ...big].map((r) => Buffer.from(r.value)),
    )
    expect(decoded.records.map((r) => r.timestampDelta).slice(2, 4)).toEqual([0n, 2n])
  })

  it('leaves alone a batch it did not write (another codec): null, the batches go as they are', () => {
    const a = encoded([{ key: null, value: Buffer.from('a') }], 1)
    const other = Buffer.from(a)
    other.writeInt16BE(1, 21) // gzip
    expect(mergeRecordBatches([a, other])).toBeNull()
  })

  describe('off the event loop (native/src/batch-merge.cc, as the producer merges)', () => {
    const offThread = (groups: Buffer[][]) =>
      new Promise<(Buffer | null)[]>((resolve) => mergeRecordBatchGroups(groups, resolve))

    it('runs natively where adgate is built', () => {
      expect(mergesOffThread).toBe(true)
    })

    it('every group merged to the same bytes as the reference, in order; one not ours is null, the others still merged', async () => {
      const other = encoded([{ key: null, value: Buffer.from('a') }], 1)
      other.writeInt16BE(1, 21) // gzip
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(batchArb, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
          async (jobs) => {
            const base = 1_700_000_000_000
            const groups = jobs.map((sets) => sets.map((s) => encoded(s.records, base + s.timestamp)))
            groups.splice(1, 0, [groups[0]![0]!, other])
            const merged = await offThread(groups)
            expect(merged).toHaveLength(groups.length)
            expect(merged[1]).toBeNull()
            for (let g = 0; g < groups.length; g++)
              if (g !== 1) expect(merged[g]!.equals(mergeRecordBatches(groups[g]!)!)).toBe(true)
          },
        ),
        { numRuns: runs(40) },
      )
    })

    it('records past one 64 KiB LZ4 block, and timestamps too far apart to merge (null)', async () => {
      const big = [0, 1].map(() => ({ key: 'k', value: randomBytes(70_000) }))
      const many = Array.from({ length: 9000 }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`) }))
      const sets = [encoded(big, 5), encoded(many, 7), encoded(big, 6)]
      const far = [encoded(many.slice(0, 2), 0), encoded(many.slice(0, 2), 0x40000000)]
      const [merged, apart] = await offThread([sets, far])
      expect(merged!.equals(mergeRecordBatches(sets)!)).toBe(true)
      expect(readRecordsBatch(Reader.from(merged!)).records).toHaveLength(9004)
      expect(apart).toBeNull()
      expect(mergeRecordBatches(far)).toBeNull()
    })
  })
})
