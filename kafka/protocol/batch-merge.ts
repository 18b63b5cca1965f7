import { createRequire } from 'node:module'
import { decodeOwnLz4Frame } from '../../codecs/lz4-frame.js'
import { LZ4, RECORD_BATCH_HEADER_BYTES, readVarint, writeRecordBatch } from './record-batch.js'
import { varintSize, Writer } from './writer.js'

/**
 * Several record batches of one partition, written by the decode workers (record-batch.ts), as ONE
 * batch: a Produce request carries one batch per partition, so without this each request's (or
 * task's) batch took a request of its own, and the broker's cost is mostly per request and per
 * batch. A batch's records are compressed as a whole and each names its place by offset and
 * timestamp deltas from the batch's base, which a broker requires to be 0, 1, 2… (else it rebuilds
 * and recompresses the batch): so the records are decompressed, their two deltas rewritten (a
 * varint each, so each record's length prefix too), and compressed again. The rest of each record
 * (key, value, headers) is copied as it is.
 *
 * Returns null when a batch is not one of ours (another codec or frame layout, a timestamp too far
 * from the first): those are sent as they are.
 *
 * The producer merges with mergeRecordBatchGroups below: natively, off the event loop. This is the
 * reference, and the fallback without the addon.
 */
const raw = new Writer(256 * 1024)
const out = new Writer(64 * 1024)

/** Timestamp deltas are written as 32-bit varints: batches further apart are not merged. */
const MAX_TIMESTAMP_SPREAD = 0x3fffffff

export function mergeRecordBatches(batches: readonly Buffer[]): Buffer | null {
  const first = batches[0]!
  const base = Number(first.readBigInt64BE(27))
  let maxTimestamp = base
  let count = 0
  raw.reset()
  for (const batch of batches) {
    if (batch[16] !== 2 || (batch.readInt16BE(21) & 7) !== LZ4) return null
    const firstTimestamp = Number(batch.readBigInt64BE(27))
    const spread = firstTimestamp - base
    if (spread > MAX_TIMESTAMP_SPREAD || spread < -MAX_TIMESTAMP_SPREAD) return null
    maxTimestamp = Math.max(maxTimestamp, Number(batch.readBigInt64BE(35)))
    const records = batch.readInt32BE(57)
    const at = raw.pos
    if (!decodeOwnLz4Frame(batch.subarray(RECORD_BATCH_HEADER_BYTES), raw)) return null
    // The first batch's records keep their deltas (offsets 0…n-1 from the same base, as the
    // workers write them): only the batches after it are rewritten.
    if (count === 0 && spread === 0 && batch.readInt32BE(23) === records - 1) {
      count = records
      continue
    }
    // The decompressed records are at raw[at, raw.pos): rewritten after them, then moved down.
    const end = raw.pos
    const r = { buf: raw.buf, pos: at }
    for (let i = 0; i < records; i++) {
      r.buf = raw.buf // the writes below may have grown it
      const length = readVarint(r)
      const bodyAt = r.pos
      // attributes int8 | timestampDelta varlong | offsetDelta varint | key, value, headers
      r.pos++
      const tsDelta = readVarint(r)
      readVarint(r) // offsetDelta: rewritten as the merged batch's count
      const restAt = r.pos
      const restEnd = bodyAt + length
      if (restEnd > end) return null
      const newTs = tsDelta + spread
      const newLength = 1 + varintSize(newTs) + varintSize(count) + (restEnd - restAt)
      raw.varint(newLength).int8(raw.buf[bodyAt]!).varint(newTs).varint(count)
      raw.ensure(restEnd - restAt)
      // copyWithin (a builtin) rather than Buffer#copy (a call into C++): ~100 small copies a merge.
      raw.buf.copyWithin(raw.pos, restAt, restEnd)
      raw.pos += restEnd - restAt
      count++
      r.pos = restEnd
    }
    raw.buf.copyWithin(at, end, raw.pos)
    raw.pos = at + (raw.pos - end)
  }
  out.reset()
  writeRecordBatch(out, raw.result(), count, base, maxTimestamp)
  return Buffer.from(out.result())
}

/**
 * Each group of batches merged as mergeRecordBatches would (to the same bytes), on the libuv
 * threadpool when the native addon is built (native/src/batch-merge.cc): a merge decompresses and
 * recompresses every record, ~35 µs per 100-event request that the event loop, the gateway's
 * bottleneck, no longer spends. With `offLoop` false (a quiet loop: a threadpool thread waiting
 * for a core on a loaded machine took 13-25 ms, where the merge here takes tens of µs; or a job
 * too small to pay for the hop, see MIN_OFF_LOOP_MERGE_BYTES in batch-sink.ts) or without the
 * addon, here and now: `done` is called before this returns. `done` gets the merged batches in
 * the groups' order (null: not ours).
 */
export function mergeRecordBatchGroups(
  groups: readonly (readonly Buffer[])[],
  done: MergeDone,
  offLoop = true,
): void {
  if (offLoop && nativeMerge !== null) nativeMerge(groups, done)
  else done(groups.map(mergeRecordBatches))
}

type MergeDone = (merged: (Buffer | null)[]) => void
type NativeMerge = (groups: readonly (readonly Buffer[])[], done: MergeDone) => void

/** The optional addon's merge (native/index.js exports a null binding when it is not built). */
const nativeMerge: NativeMerge | null =
  (
    createRequire(import.meta.url)('@adgate/native') as {
      binding: { mergeRecordBatches?: NativeMerge } | null
    }
  ).binding?.mergeRecordBatches ?? null

/** Whether merges run natively (a test checks that they do where adgate is built). */
export const mergesOffThread = nativeMerge !== null
