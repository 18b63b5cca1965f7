import { describe, expect, it } from 'vitest'
import { batchRecordCount, nextSequence, stampBatch } from '../../kafka/idempotence.js'
import { PartitionLane, type PendingBatch, type SendState } from '../../kafka/partition-lane.js'
import { produceFate } from '../../kafka/produce-errors.js'
import { crc32c } from '../../kafka/protocol/crc32c.js'
import { RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'

describe('produceFate: decided from the client library table of Kafka error codes', () => {
  it.each([
    [0, 'ok'],
    [46, 'ok'], // DUPLICATE_SEQUENCE_NUMBER: an earlier attempt wrote it
    [6, 'retry'], // NOT_LEADER_OR_FOLLOWER
    [19, 'retry'], // NOT_ENOUGH_REPLICAS
    [7, 'retry'], // REQUEST_TIMED_OUT
    [45, 'resequence'], // OUT_OF_ORDER_SEQUENCE_NUMBER
    [59, 'resequence'], // UNKNOWN_PRODUCER_ID
    [29, 'unauthorized'], // TOPIC_AUTHORIZATION_FAILED
    [10, 'too-large'], // MESSAGE_TOO_LARGE
    [18, 'too-large'], // RECORD_LIST_TOO_LARGE
    [87, 'refused'], // INVALID_RECORD
    [32, 'refused'], // INVALID_TIMESTAMP
    [9999, 'retry'], // newer than the table: retried until the deadline, never lost
  ])('code %i → %s', (code, fate) => {
    expect(produceFate(code)).toBe(fate)
  })
})

describe('stampBatch', () => {
  it('writes producer id, epoch and base sequence and keeps the CRC-32C valid', () => {
    const b = new RecordBatchBuilder()
    b.add('t', 0, null, Buffer.from('v'), Buffer.from([0]))
    b.add('t', 0, null, Buffer.from('w'), Buffer.from([0]))
    const out = b.finish(Date.now())
    const batch = Buffer.from(out.buffer.subarray(0, out.batches[0]!.length))
    expect(batch.readBigInt64BE(43)).toBe(-1n)
    stampBatch(batch, { producerId: 42n, epoch: 3 }, 1000)
    expect([batch.readBigInt64BE(43), batch.readInt16BE(51), batch.readInt32BE(53)]).toEqual([42n, 3, 1000])
    expect(batch.readUInt32BE(17)).toBe(crc32c(batch, 21))
    expect(batchRecordCount(batch)).toBe(2)
    expect(nextSequence(0x7fffffff, 2)).toBe(1)
  })
})

describe('PartitionLane', () => {
  const owner: SendState = {
    left: 0,
    settled: false,
    batches: [],
    progress: null,
    refused: null,
    resolve() {},
    reject() {},
  }
  const pending = (lane: PartitionLane, seq: number, ambiguous = false): PendingBatch => ({
    index: 0,
    lane,
    bytes: Buffer.alloc(10 + seq),
    records: 1,
    owner,
    queuedAt: 0,
    seq,
    identity: lane.identity,
    sent: seq >= 0,
    ambiguous,
    parts: null,
    carrier: null,
    alone: false,
  })

  it('after a failure, unacknowledged batches go out again first, in sequence order', () => {
    const lane = new PartitionLane('t', 0)
    lane.identity = { producerId: 1n, epoch: 0 }
    const [a, b, c] = [pending(lane, 0), pending(lane, 1), pending(lane, -1)]
    lane.unacked = [a, b]
    lane.enqueue(c)
    lane.acknowledge(a)
    lane.requeueUnacked()
    expect(lane.queue).toEqual([b, c])
    expect(lane.unacked).toEqual([])
    expect(lane.queuedBytes).toBe(11 + 9)
  })

  it('counts the bytes queued as batches come, go and come back', () => {
    const lane = new PartitionLane('t', 0)
    const [a, b, c] = [pending(lane, -1), pending(lane, 0), pending(lane, 1)]
    for (const p of [a, b, c]) lane.enqueue(p)
    expect(lane.queuedBytes).toBe(9 + 10 + 11)
    expect(lane.takeFirst()).toBe(a)
    expect(lane.takeFirst()).toBe(b)
    expect(lane.queuedBytes).toBe(11)
    lane.putBack([b])
    expect(lane.queue).toEqual([b, c])
    expect(lane.queuedBytes).toBe(21)
    expect(lane.dropFrom(1)).toEqual([c])
    expect(lane.queuedBytes).toBe(10)
    lane.dropFrom(0)
    expect(lane.queuedBytes).toBe(0)
  })

  it('a new producer id restarts sequences and counts batches that may already be written', () => {
    const lane = new PartitionLane('t', 0)
    lane.identity = { producerId: 1n, epoch: 0 }
    lane.nextSeq = 7
    lane.enqueue(pending(lane, 5, true))
    lane.enqueue(pending(lane, 6))
    expect(lane.restartUnder({ producerId: 2n, epoch: 0 })).toBe(1)
    expect(lane.nextSeq).toBe(0)
    expect(lane.queue.map((p) => p.seq)).toEqual([-1, -1])
  })

  // Regression (seen under load on a new topic): the first batch got a retriable error, the
  // batches pipelined behind it were written (the broker, knowing no state for the producer,
  // took their sequences), and the first one landed behind them after its retry.
  it("keeps one batch in flight until the broker holds the producer id's sequence, again after a new producer id", () => {
    const lane = new PartitionLane('t', 0)
    lane.identity = { producerId: 1n, epoch: 0 }
    expect(lane.maxInFlight(5)).toBe(1)
    lane.confirmed = true
    expect(lane.maxInFlight(5)).toBe(5)
    lane.restartUnder({ producerId: 2n, epoch: 0 })
    expect(lane.maxInFlight(5)).toBe(1)
  })
})
