// The Produce request adgate writes itself: the broker is asked to answer before adgate's own
// deadline for the request, so a produce held for replicas is answered (REQUEST_TIMED_OUT,
// retried, the connection kept) instead of costing the connection (see Cluster.request).
import { describe, expect, it } from 'vitest'
import { ACKS_ALL, brokerTimeoutMs, writeProduceRequest } from '../../kafka/produce-request.js'

describe('Produce request', () => {
  it('asks the broker to answer before the local deadline, with room for the answer to travel', () => {
    expect(brokerTimeoutMs(5000)).toBe(4500)
    expect(brokerTimeoutMs(30_000)).toBe(29_000) // at most 1 s of margin
    expect(brokerTimeoutMs(50)).toBe(45)
    expect(brokerTimeoutMs(0)).toBe(1) // already late: the broker still gets a valid timeout
    expect(brokerTimeoutMs(-20)).toBe(1)
  })

  it('writes acks=all and the timeout it is given (v9: null transactional id, acks, timeout_ms)', () => {
    const bytes = writeProduceRequest(4500, [{ topic: 't', partition: 0, batch: Buffer.alloc(61) }]).buffer
    expect(bytes[0]).toBe(0) // COMPACT_NULLABLE_STRING null
    expect(bytes.readInt16BE(1)).toBe(ACKS_ALL)
    expect(bytes.readInt32BE(3)).toBe(4500)
  })
})
