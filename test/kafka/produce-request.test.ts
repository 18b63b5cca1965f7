// The Produce request adgate writes itself: the broker is asked to answer before adgate's own
// deadline for the request, so a produce held for replicas is answered (REQUEST_TIMED_OUT,
// retried, the connection kept) instead of costing the connection (see Cluster.request).
// Request and response are written and read by hand (no Buffer per field, no BigInt per
// partition): checked here byte for byte against the library's writer and parser.
import { produceV9, Reader, type ResponseError, Writer } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import {
  ACKS_ALL,
  brokerTimeoutMs,
  type PartitionRecords,
  parseProduceResponse,
  writeProduceRequest,
} from '../../kafka/produce-request.js'

/** The same request through @platformatic/kafka's Writer, a field at a time (how adgate wrote it before). */
function libraryRequest(timeoutMs: number, data: readonly PartitionRecords[]): Buffer {
  const byTopic = new Map<string, PartitionRecords[]>()
  for (const d of data) byTopic.set(d.topic, [...(byTopic.get(d.topic) ?? []), d])
  return Writer.create()
    .appendString(null)
    .appendInt16(ACKS_ALL)
    .appendInt32(timeoutMs)
    .appendArray([...byTopic], (w, [topic, parts]) => {
      w.appendString(topic).appendArray(parts, (w, p) => {
        w.appendInt32(p.partition)
          .appendUnsignedVarInt(p.batch.length + 1)
          .append(p.batch)
      })
    })
    .appendTaggedFields().buffer
}

interface Answer {
  partition: number
  errorCode: number
  recordErrors?: [number, string | null][]
  errorMessage?: string | null
  taggedField?: Buffer
}

/** A Produce v9 response body (after the header), as a broker writes it. */
function response(topics: [string, Answer[]][], topLevelTag?: Buffer): Buffer {
  const tags = (w: Writer, tag?: Buffer) =>
    tag
      ? w.appendUnsignedVarInt(1).appendUnsignedVarInt(7).appendUnsignedVarInt(tag.length).append(tag)
      : w.appendUnsignedVarInt(0)
  const w = Writer.create().appendUnsignedVarInt(topics.length + 1)
  for (const [name, answers] of topics) {
    w.appendString(name).appendUnsignedVarInt(answers.length + 1)
    for (const a of answers) {
      w.appendInt32(a.partition)
        .appendInt16(a.errorCode)
        .appendInt64(1234567890123n)
        .appendInt64(-1n)
        .appendInt64(42n)
        .appendUnsignedVarInt((a.recordErrors?.length ?? 0) + 1)
      for (const [index, message] of a.recordErrors ?? []) tags(w.appendInt32(index).appendString(message))
      tags(w.appendString(a.errorMessage ?? null), a.taggedField)
    }
    tags(w)
  }
  return tags(w.appendInt32(0), topLevelTag).buffer
}

const read = (bytes: Buffer) => parseProduceResponse(1, 0, 9, Reader.from(bytes))

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

  it("writes the bytes the library's writer does: partitions grouped by topic, in first-seen order, batches as they are", () => {
    const batch = (n: number, size: number) => Buffer.alloc(size, n)
    const data: PartitionRecords[] = [
      { topic: 'adgate.impressions', partition: 3, batch: batch(1, 61) },
      { topic: 'adgate.clicks', partition: 0, batch: batch(2, 200) },
      { topic: 'adgate.impressions', partition: 0, batch: batch(3, 70_000) }, // a 3-byte length
      { topic: 'é-topic', partition: 7, batch: batch(4, 127) }, // a length just under 2 bytes; UTF-8
    ]
    const ours = writeProduceRequest(29_000, data)
    expect(ours.buffer.equals(libraryRequest(29_000, data))).toBe(true)
    // The batches are appended, not copied (the connection joins the pieces once).
    for (const d of data) expect(ours.buffers).toContain(d.batch)
  })
})

describe('Produce response', () => {
  it("reads each partition's error code as the library's parser does", () => {
    const bytes = response([
      [
        'adgate.impressions',
        [
          { partition: 2, errorCode: 0 },
          { partition: 0, errorCode: 45 },
        ],
      ],
      [
        'adgate.clicks',
        [
          {
            partition: 1,
            errorCode: 10,
            recordErrors: [
              [0, 'too big'],
              [3, null],
            ],
            errorMessage: 'no',
          },
        ],
      ],
    ])
    let library: ReturnType<typeof produceV9.parseResponse>
    try {
      library = produceV9.parseResponse(1, 0, 9, Reader.from(bytes))
    } catch (err) {
      library = (err as ResponseError & { response: typeof library }).response
    }
    const expected = library.responses.flatMap((t) =>
      t.partitionResponses.map((p) => ({ topic: t.name, partition: p.index, errorCode: p.errorCode })),
    )
    expect(read(bytes)).toEqual(expected)
    expect(expected).toHaveLength(3)
  })

  it('skips tagged fields a newer broker may add, wherever they are', () => {
    const bytes = response(
      [
        [
          't',
          [
            { partition: 0, errorCode: 0, taggedField: Buffer.from('future') },
            { partition: 1, errorCode: 6 },
          ],
        ],
      ],
      Buffer.alloc(300),
    )
    expect(read(bytes)).toEqual([
      { topic: 't', partition: 0, errorCode: 0 },
      { topic: 't', partition: 1, errorCode: 6 },
    ])
  })

  it('throws on a response cut short (the connection is then dropped and the batches sent again)', () => {
    const bytes = response([['t', [{ partition: 0, errorCode: 0, errorMessage: 'fine' }]]])
    expect(() => read(bytes)).not.toThrow()
    for (const cut of [1, 4, 20, bytes.length - 3])
      expect(() => read(bytes.subarray(0, cut))).toThrow(RangeError)
  })
})
