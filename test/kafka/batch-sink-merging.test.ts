// BatchSink while its merges run off the event loop (kafka/protocol/batch-merge.ts
// mergeRecordBatchGroups): the merges are the real ones, held here until a test lets them finish
// (or answered null, as for batches that are not ours), against the fake broker of
// support/fake-cluster.ts. No Kafka: in `npm run test:unit`.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  type BatchSet,
  BatchSink,
  MIN_OFF_LOOP_MERGE_BYTES,
  NotDurableError,
} from '../../kafka/batch-sink.js'
import { decodeRecordBatch, RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'
import { FakeCluster } from '../support/fake-cluster.js'

const merges = vi.hoisted(() => ({
  /** While set, finished merges wait for finish(). */
  holding: false,
  /** Answer every merge with null (not ours) instead of merging. */
  refuse: false,
  started: 0,
  /** Merges answered before mergeRecordBatchGroups returned: on the event loop. */
  onLoop: 0,
  waiting: [] as (() => void)[],
  finish(): void {
    for (const done of this.waiting.splice(0)) done()
  },
}))

vi.mock('../../kafka/protocol/batch-merge.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../kafka/protocol/batch-merge.js')>()
  return {
    ...real,
    mergeRecordBatchGroups(
      groups: readonly (readonly Buffer[])[],
      done: (merged: (Buffer | null)[]) => void,
      offLoop?: boolean,
    ) {
      merges.started++
      let returned = false
      real.mergeRecordBatchGroups(
        groups,
        (merged) => {
          if (!returned) merges.onLoop++
          const answer = () => done(merges.refuse ? merged.map(() => null) : merged)
          if (merges.holding) merges.waiting.push(answer)
          else answer()
        },
        offLoop,
      )
      returned = true
    },
  }
})

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as never
const sinks: BatchSink[] = []
const until = { timeout: 30_000, interval: 5 }

afterEach(async () => {
  merges.holding = false
  merges.refuse = false
  merges.started = 0
  merges.onLoop = 0
  merges.finish()
  await Promise.all(sinks.splice(0).map((s) => s.close()))
})

async function connected(
  cluster: FakeCluster,
  ackTimeoutMs = 30_000,
  mergeOnLoop?: () => boolean,
  // Every merge off a busy loop, unless a test asks for the size threshold.
  minOffLoopMergeBytes = 0,
): Promise<BatchSink> {
  const sink = new BatchSink({
    brokers: [],
    clientId: 'adgate-test',
    topics: Object.keys(cluster.leaders),
    connection: {},
    ackTimeoutMs,
    maxInFlight: 5,
    maxPendingBytes: 1 << 20,
    mergeOnLoop,
    minOffLoopMergeBytes,
    logger: quiet,
    cluster,
  })
  sinks.push(sink)
  await sink.connect()
  return sink
}

/** Each record's value is its tag, then `pad` random (incompressible) bytes. */
function batches(topic: string, partitions: number[], records: number, tag: string, pad = 0): BatchSet {
  const builder = new RecordBatchBuilder()
  for (const p of partitions)
    for (let n = 0; n < records; n++)
      builder.add(
        topic,
        p,
        null,
        Buffer.concat([Buffer.from(`${tag}${p}-${n}`), randomBytes(pad)]),
        Buffer.from([0]),
      )
  const out = builder.finish(Date.now())
  return { buffer: Buffer.from(out.buffer), batches: out.batches }
}

async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

const values = (batch: Buffer) => decodeRecordBatch(batch).records.map((r) => r.value.toString())

/**
 * Partition 0's first batch ('a', 3 records) in flight, unanswered (a new lane has one request in
 * flight until the broker holds its sequence); then two sends for it ('b', 'c'), which queue and
 * are merged once 'a' is answered. Merges are held from then on.
 */
async function queuedBehindOne(cluster: FakeCluster, sink: BatchSink, pad = 0) {
  cluster.holding = true
  const first = sink.send(batches('t', [0], 3, 'a'))
  await vi.waitFor(() => expect(cluster.produced).toHaveLength(1), until)
  const later = [
    sink.send(batches('t', [0], 3, 'b', pad)).catch((err: unknown) => err),
    sink.send(batches('t', [0], 2, 'c', pad)).catch((err: unknown) => err),
  ]
  await turns()
  merges.holding = true
  cluster.holding = false
  cluster.release()
  expect((await first).size).toBe(0)
  await vi.waitFor(() => expect(merges.started).toBe(1), until)
  return later
}

describe('BatchSink merging off the event loop', () => {
  it("while a leader's merge runs it sends nothing; then one request carries the merged batch and its other partitions' batches", async () => {
    const cluster = new FakeCluster({ t: [1, 1] })
    const sink = await connected(cluster)
    const later = await queuedBehindOne(cluster, sink)
    // Partition 1 has nothing in flight, but its leader is merging: it waits to share the request.
    later.push(sink.send(batches('t', [1], 1, 'd')))
    await turns()
    expect(cluster.produced).toHaveLength(1)
    merges.finish()
    for (const send of later) expect(((await send) as Map<number, unknown>).size).toBe(0)
    expect(cluster.produced).toHaveLength(2)
    const request = cluster.produced[1]!
    expect(request.partitions.map((p) => p.partition)).toEqual([0, 1])
    expect(values(request.partitions[0]!.batch)).toEqual(['b0-0', 'b0-1', 'b0-2', 'c0-0', 'c0-1'])
    // Its sequence follows the first batch's 3 records: stamped when sent, not when merged.
    expect(request.partitions[0]!.batch.readInt32BE(53)).toBe(3)
    expect(values(request.partitions[1]!.batch)).toEqual(['d1-0'])
    expect(sink.stats).toMatchObject({ requests: 2, batches: 3, records: 9, merged: 2, errors: 0 })
    expect(merges.onLoop).toBe(0)
    expect(sink.bufferedBytes).toBe(0)
  })

  it('while the loop is quiet (mergeOnLoop), the merge runs on it, at once: the same merged batch, no threadpool hop', async () => {
    const cluster = new FakeCluster({ t: [1, 1] })
    let quietLoop = false
    const sink = await connected(cluster, 30_000, () => quietLoop)
    cluster.holding = true
    const first = sink.send(batches('t', [0], 3, 'a'))
    await vi.waitFor(() => expect(cluster.produced).toHaveLength(1), until)
    const later = [sink.send(batches('t', [0], 3, 'b')), sink.send(batches('t', [0], 2, 'c'))]
    await turns()
    quietLoop = true
    cluster.holding = false
    cluster.release()
    expect((await first).size).toBe(0)
    for (const send of later) expect((await send).size).toBe(0)
    expect([merges.started, merges.onLoop]).toEqual([1, 1])
    expect(cluster.produced).toHaveLength(2)
    expect(values(cluster.produced[1]!.partitions[0]!.batch)).toEqual([
      'b0-0',
      'b0-1',
      'b0-2',
      'c0-0',
      'c0-1',
    ])
    expect(sink.stats.merged).toBe(2)
  })

  it('on a busy loop, a merge job too small to pay for the hop (MIN_OFF_LOOP_MERGE_BYTES) runs on the loop at once; a big one goes off it', async () => {
    const busy = () => false
    for (const [pad, onLoop] of [
      [0, 1],
      // 'b' (3 records) and 'c' (2) are then 1.25 × the threshold together.
      [MIN_OFF_LOOP_MERGE_BYTES / 4, 0],
    ] as const) {
      merges.started = 0
      merges.onLoop = 0
      const cluster = new FakeCluster({ t: [1] })
      const sink = await connected(cluster, 30_000, busy, MIN_OFF_LOOP_MERGE_BYTES)
      const later = await queuedBehindOne(cluster, sink, pad)
      // The merge's answer, held: at once on the loop; off it, once a threadpool thread is done.
      await vi.waitFor(() => expect(merges.waiting).toHaveLength(1), until)
      expect([merges.started, merges.onLoop]).toEqual([1, onLoop])
      merges.finish()
      for (const send of later) expect(await send).toEqual(new Map())
      expect(cluster.produced).toHaveLength(2)
      const merged = decodeRecordBatch(cluster.produced[1]!.partitions[0]!.batch).records
      expect(merged.map((r) => r.value.subarray(0, 4).toString())).toEqual([
        'b0-0',
        'b0-1',
        'b0-2',
        'c0-0',
        'c0-1',
      ])
      expect(merged.every((r) => r.value.length === 4 + pad)).toBe(true)
      expect(sink.stats.merged).toBe(2)
    }
  })

  it('sends whose deadline passes during their merge are withdrawn, never sent; the merge is dropped and the partition goes on without a gap', async () => {
    const cluster = new FakeCluster({ t: [1] })
    const sink = await connected(cluster, 1500)
    const later = await queuedBehindOne(cluster, sink)
    for (const failure of [await later[0], await later[1]]) {
      expect(failure).toBeInstanceOf(NotDurableError)
      expect((failure as Error).message).toMatch(/none of these events were sent/)
    }
    expect(sink.bufferedBytes).toBe(0)
    merges.holding = false
    merges.finish()
    await turns()
    expect(cluster.produced).toHaveLength(1)
    expect((await sink.send(batches('t', [0], 1, 'd'))).size).toBe(0)
    expect(cluster.produced).toHaveLength(2)
    const batch = cluster.produced[1]!.partitions[0]!.batch
    expect(values(batch)).toEqual(['d0-0'])
    expect(batch.readInt32BE(53)).toBe(3)
    expect(sink.stats.merged).toBe(0)
  })

  it('batches whose merge fails (not ours) go as they are, in order, each answered', async () => {
    const cluster = new FakeCluster({ t: [1] })
    const sink = await connected(cluster)
    merges.refuse = true
    const later = await queuedBehindOne(cluster, sink)
    merges.finish()
    for (const send of later) expect(((await send) as Map<number, unknown>).size).toBe(0)
    const sent = cluster.produced.slice(1).map((r) => r.partitions[0]!.batch)
    expect(sent.map(values)).toEqual([
      ['b0-0', 'b0-1', 'b0-2'],
      ['c0-0', 'c0-1'],
    ])
    expect(sent.map((b) => b.readInt32BE(53))).toEqual([3, 6])
    expect(merges.started).toBe(1)
    expect(sink.stats).toMatchObject({ batches: 3, merged: 0, errors: 0 })
  })
})
