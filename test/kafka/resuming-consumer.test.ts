// The supervisor over platformatic's MessagesStream, on a fake consumer group: a stream that fails
// mid-way, a seek, a rebalance, a batch the handler rejects, a lost heartbeat. What was handed over
// must be every record once, in order per partition (or, after a seek, from the seek's target).
import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  type GroupConsumer,
  type OffsetRecord,
  ResumingConsumer,
  type TopicPartition,
} from '../../kafka/resuming-consumer.js'

type Plan = { topic: string; partitions: number[] }[]

/** A consumer group of one member over an in-memory log of `length` records per partition. */
class FakeGroup extends EventEmitter {
  assignments: Plan | null = null
  /** What the next join assigns. */
  plan: Plan
  readonly topics = { trackAll: () => {} }
  readonly committed = new Map<string, bigint[]>()
  joins = 0
  /** The next stream fails after handing out this many records. */
  failNextAfter: number | undefined
  readonly opened: { offsets: Record<string, bigint> }[] = []

  constructor(
    plan: Plan,
    readonly length: number,
  ) {
    super()
    this.plan = plan
  }

  async joinGroup(): Promise<string> {
    this.joins++
    this.assignments = this.plan
    this.emit('consumer:group:join')
    return 'member'
  }

  async consume(o: { offsets: (TopicPartition & { offset: bigint })[] }): Promise<Readable> {
    const next = new Map(o.offsets.map((p) => [`${p.topic}:${p.partition}`, p.offset]))
    this.opened.push({ offsets: Object.fromEntries(next) })
    const failAfter = this.failNextAfter
    this.failNextAfter = undefined
    let handedOut = 0
    const length = BigInt(this.length)
    const stream: Readable = new Readable({
      objectMode: true,
      highWaterMark: 4,
      read() {
        // Two records per partition per "fetch", partitions interleaved, as a fetch response.
        for (const [k, offset] of next) {
          for (let i = 0n; i < 2n && offset + i < length; i++) {
            if (handedOut === failAfter) {
              process.nextTick(() => stream.destroy(new Error('fetch failed: connection reset')))
              return
            }
            const [topic, partition] = k.split(':') as [string, string]
            stream.push({ topic, partition: Number(partition), offset: offset + i })
            handedOut++
            next.set(k, offset + i + 1n)
          }
        }
      },
    })
    return stream
  }

  async listCommittedOffsets(o: { topics: Plan }): Promise<Map<string, bigint[]>> {
    return new Map(o.topics.map((t) => [t.topic, this.committed.get(t.topic) ?? []]))
  }

  async listOffsets(o: { topics: string[] }): Promise<Map<string, bigint[]>> {
    return new Map(o.topics.map((t) => [t, [0n, 0n, 0n, 0n]]))
  }
}

function setup(group: FakeGroup, fail?: (batch: OffsetRecord[]) => boolean) {
  const got: OffsetRecord[] = []
  const revoked: TopicPartition[] = []
  const errors: string[] = []
  const reader = new ResumingConsumer(group as unknown as GroupConsumer<OffsetRecord>, {
    topics: ['a', 'b'],
    maxBatch: 5,
    retryMs: 1,
    onError: (_err, what) => errors.push(what),
  })
  const handlers = {
    onBatch: async (batch: OffsetRecord[]) => {
      if (fail?.(batch)) throw new Error('storage write failed')
      got.push(...batch)
    },
    onRevoke: async (parts: TopicPartition[]) => {
      revoked.push(...parts)
    },
  }
  return { reader, handlers, got, revoked, errors }
}

/** Offsets handed over per topic-partition, in the order they came. */
function byPartition(records: OffsetRecord[]): Record<string, number[]> {
  const out: Record<string, number[]> = {}
  for (const r of records) {
    const k = `${r.topic}:${r.partition}`
    out[k] = [...(out[k] ?? []), Number(r.offset)]
  }
  return out
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(cond()).toBe(true)
}

const ALL: Plan = [
  { topic: 'a', partitions: [0, 1] },
  { topic: 'b', partitions: [0, 1] },
]

describe('ResumingConsumer', () => {
  it('hands over every record once, in order, from the committed offset (else the earliest)', async () => {
    const group = new FakeGroup(ALL, 20)
    group.committed.set('a', [5n, -1n])
    const { reader, handlers, got } = setup(group)
    await reader.start(handlers)
    await until(() => got.length === 15 + 20 + 40)
    await reader.stop()
    expect(byPartition(got)).toEqual({
      'a:0': range(5, 20),
      'a:1': range(0, 20),
      'b:0': range(0, 20),
      'b:1': range(0, 20),
    })
  })

  it('a stream that fails mid-way is replaced from the last records handed over: no gap, no duplicate', async () => {
    const group = new FakeGroup(ALL, 30)
    group.failNextAfter = 13
    const { reader, handlers, got, errors } = setup(group)
    await reader.start(handlers)
    await until(() => got.length === 4 * 30)
    await reader.stop()
    expect(errors.length).toBeGreaterThan(0)
    expect(group.opened.length).toBeGreaterThanOrEqual(2)
    for (const offsets of Object.values(byPartition(got))) expect(offsets).toEqual(range(0, 30))
  })

  it('a seek re-reads from its target', async () => {
    const group = new FakeGroup([{ topic: 'a', partitions: [0] }], 10)
    let sought = false
    const { reader, handlers, got } = setup(group)
    await reader.start({
      ...handlers,
      onBatch: async (batch) => {
        await handlers.onBatch(batch)
        if (!sought && got.length >= 5) {
          sought = true
          reader.seek([{ topic: 'a', partition: 0, offset: 2n }])
        }
      },
    })
    await until(() => got.length === 5 + 8)
    await reader.stop()
    expect(byPartition(got)['a:0']).toEqual([...range(0, 5), ...range(2, 10)])
  })

  it('a batch the handler rejects is handed over again', async () => {
    const group = new FakeGroup([{ topic: 'a', partitions: [0] }], 12)
    let failures = 0
    const { reader, handlers, got } = setup(group, (batch) => batch[0]!.offset === 5n && failures++ === 0)
    await reader.start(handlers)
    await until(() => got.length === 12)
    await reader.stop()
    expect(failures).toBe(2)
    expect(byPartition(got)['a:0']).toEqual(range(0, 12))
  })

  it('a rebalance revokes partitions, stops handing them over, and starts new ones at their committed offset', async () => {
    const group = new FakeGroup([{ topic: 'a', partitions: [0, 1] }], 10)
    const { reader, handlers, got, revoked } = setup(group)
    await reader.start(handlers)
    await until(() => got.length === 20)
    group.plan = [{ topic: 'a', partitions: [1, 2] }]
    group.committed.set('a', [-1n, 3n, 4n])
    await group.joinGroup()
    await until(() => got.length === 26)
    await reader.stop()
    expect(revoked).toEqual([{ topic: 'a', partition: 0 }])
    expect(reader.assigned()).toEqual([
      { topic: 'a', partition: 1 },
      { topic: 'a', partition: 2 },
    ])
    // Partition 1 was kept: it goes on from where it was (its end), not from the committed 3.
    expect(byPartition(got)).toEqual({ 'a:0': range(0, 10), 'a:1': range(0, 10), 'a:2': range(4, 10) })
  })

  it('joins the group again after a heartbeat failed (platformatic stops heartbeating then)', async () => {
    const group = new FakeGroup([{ topic: 'a', partitions: [0] }], 3)
    const { reader, handlers, got } = setup(group)
    await reader.start(handlers)
    await until(() => got.length === 3)
    group.emit('consumer:heartbeat:error', { error: new Error('connection reset') })
    await until(() => group.joins === 2)
    await reader.stop()
    expect(byPartition(got)['a:0']).toEqual(range(0, 3))
  })
})
