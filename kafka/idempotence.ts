import { crc32cAfterChange } from './protocol/crc32c.js'

/**
 * The idempotent producer's fields of a RecordBatch v2 header, written into a batch the workers
 * encoded (with producerId -1, and a valid CRC-32C) just before it is sent, and the CRC-32C
 * updated for the 14 bytes changed (not recomputed over the batch: that pass was 3 % of the main
 * thread's CPU per request):
 *
 *   baseOffset int64 @0 | batchLength int32 @8 | partitionLeaderEpoch int32 @12 | magic int8 @16
 *   crc uint32 @17 (covers bytes 21…) | attributes int16 @21 | lastOffsetDelta int32 @23
 *   firstTimestamp int64 @27 | maxTimestamp int64 @35
 *   producerId int64 @43 | producerEpoch int16 @51 | baseSequence int32 @53 | recordCount int32 @57
 */
export interface ProducerIdentity {
  readonly producerId: bigint
  readonly epoch: number
}

const before = Buffer.alloc(14)

export function stampBatch(batch: Buffer, who: ProducerIdentity, baseSequence: number): void {
  // 14 bytes: a loop costs less than Buffer.copy's call into C++ (0.5 of 1 µs per batch).
  for (let i = 0; i < 14; i++) before[i] = batch[43 + i]!
  batch.writeBigInt64BE(who.producerId, 43)
  batch.writeInt16BE(who.epoch, 51)
  batch.writeInt32BE(baseSequence, 53)
  batch.writeUInt32BE(crc32cAfterChange(batch.readUInt32BE(17), batch, 43, 57, before, batch.length), 17)
}

/** Records in a batch (its header says so). */
export function batchRecordCount(batch: Buffer): number {
  return batch.readInt32BE(57)
}

/** Sequence numbers wrap at 2^31 (Kafka's DefaultRecordBatch.incrementSequence). */
export function nextSequence(sequence: number, records: number): number {
  return (sequence + records) % 0x80000000
}
