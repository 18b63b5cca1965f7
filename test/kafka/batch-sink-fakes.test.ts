// BatchSink's answers against a fake broker (support/fake-cluster.ts): no Kafka, in `npm run test:unit`.
// What the real brokers do to it (idempotence, order, TLS, SASL, ACLs) is batch-sink.test.ts's.
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ACKED,
  type BatchSet,
  BatchSink,
  KafkaRefusedError,
  NotDurableError,
  REFUSED,
  type SendProgress,
} from '../../kafka/batch-sink.js'
import { decodeRecordBatch, RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'
import { FakeCluster } from '../support/fake-cluster.js'

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as never
const sinks: BatchSink[] = []
// Generous: everything here is in-process, but the machine may be loaded.
const until = { timeout: 30_000, interval: 5 }

afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()))
})

async function connected(
  cluster: FakeCluster,
  ackTimeoutMs = 30_000,
  maxBatchBytes?: number,
  lingerMs?: number,
): Promise<BatchSink> {
  const sink = new BatchSink({
    brokers: [],
    clientId: 'adgate-test',
    topics: Object.keys(cluster.leaders),
    connection: {},
    ackTimeoutMs,
    maxInFlight: 5,
    maxPendingBytes: 1 << 20,
    maxBatchBytes,
    lingerMs,
    logger: quiet,
    cluster,
  })
  sinks.push(sink)
  await sink.connect()
  return sink
}

/** One batch of `records` records for each partition named, in that order (values `${tag}${p}-${n}`). */
function batches(topic: string, partitions: number[], records = 3, tag = ''): BatchSet {
  const builder = new RecordBatchBuilder()
  for (const p of partitions)
    for (let n = 0; n < records; n++)
      builder.add(topic, p, null, Buffer.from(`${tag}${p}-${n}`), Buffer.from([0]))
  const out = builder.finish(Date.now())
  return { buffer: Buffer.from(out.buffer), batches: out.batches }
}

function progressOf(set: BatchSet): SendProgress {
  return { acked: new Uint8Array(set.batches.length), refused: new Map() }
}

/** A few turns of the event loop, for an answer that should not come to have come. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

describe('BatchSink against a fake broker', () => {
  it('send() resolves on the acks=all answer and not before it, the batches stamped as an idempotent producer', async () => {
    const cluster = new FakeCluster({ t: [1, 1] })
    const sink = await connected(cluster)
    cluster.holding = true
    const set = batches('t', [0, 1])
    const progress = progressOf(set)
    let settled = false
    const sent = sink.send(set, progress).finally(() => {
      settled = true
    })
    await vi.waitFor(() => expect(cluster.produced).toHaveLength(1), until)
    const request = cluster.produced[0]!
    expect(request.acks).toBe(-1)
    expect(request.partitions.map((p) => p.partition)).toEqual([0, 1])
    // producerId @43, baseSequence @53 (kafka/idempotence.ts): the first id the broker gave, from 0.
    for (const p of request.partitions) {
      expect(p.batch.readBigInt64BE(43)).toBe(1n)
      expect(p.batch.readInt32BE(53)).toBe(0)
    }
    await turns()
    expect(settled).toBe(false)
    expect([...progress.acked]).toEqual([0, 0])

    cluster.release()
    const refused = await sent
    expect(refused.size).toBe(0)
    expect([...progress.acked]).toEqual([ACKED, ACKED])
    expect(sink.stats).toMatchObject({ batches: 2, records: 6, errors: 0 })
    expect(sink.bufferedBytes).toBe(0)
  })

  it("a batch Kafka refuses is that batch's own: the set's other batches are written and the send resolves", async () => {
    const cluster = new FakeCluster({ t: [1, 1, 1] })
    const sink = await connected(cluster)
    cluster.answer = (_topic, partition) => (partition === 1 ? 10 : 0) // MESSAGE_TOO_LARGE
    const set = batches('t', [0, 1, 2])
    const progress = progressOf(set)
    const refused = await sink.send(set, progress)
    expect([...refused.keys()]).toEqual([1])
    const why = refused.get(1)!
    expect(why).toBeInstanceOf(KafkaRefusedError)
    expect(why.kafkaError).toBe('MESSAGE_TOO_LARGE')
    expect(why.tooLarge).toBe(true)
    expect(why.message).toContain('t/1')
    expect([...progress.acked]).toEqual([ACKED, REFUSED, ACKED])
    expect(sink.stats.batches).toBe(2)

    // The partition takes the next batch.
    cluster.answer = () => 0
    expect((await sink.send(batches('t', [1]))).size).toBe(0)
  })

  it("each partition's answer is its own, in whatever order the broker lists them", async () => {
    const cluster = new FakeCluster({ t: [1, 1, 1], u: [1] })
    const sink = await connected(cluster)
    cluster.reverseAnswers = true
    cluster.answer = (topic, partition) => (topic === 't' && partition === 0 ? 10 : 0) // MESSAGE_TOO_LARGE
    // Two topics interleaved: the request groups them by topic, the answer reverses that.
    const builder = new RecordBatchBuilder()
    for (const [topic, p] of [
      ['t', 0],
      ['t', 1],
      ['u', 0],
      ['t', 2],
    ] as const)
      builder.add(topic, p, null, Buffer.from(`${topic}${p}`), Buffer.from([0]))
    const out = builder.finish(Date.now())
    const set: BatchSet = { buffer: Buffer.from(out.buffer), batches: out.batches }
    const progress = progressOf(set)
    const refused = await sink.send(set, progress)
    expect(cluster.produced).toHaveLength(1)
    expect([...refused.keys()]).toEqual([0])
    expect([...progress.acked]).toEqual([REFUSED, ACKED, ACKED, ACKED])
  })

  /**
   * Three requests' batches for partition 0: the first goes alone; the next two arrive while it is
   * in flight (a new lane has one request in flight until the broker holds its sequence) and go
   * as ONE batch in the next request. The third request has a batch for partition 1 as well,
   * which goes at once (its lane has nothing in flight).
   */
  async function twoQueuedBehindOne(cluster: FakeCluster, sink: BatchSink) {
    cluster.holding = true
    const first = sink.send(batches('t', [0], 3, 'a'))
    await vi.waitFor(() => expect(cluster.produced).toHaveLength(1), until)
    const sets = [batches('t', [0], 3, 'b'), batches('t', [0, 1], 2, 'c')]
    const progress = sets.map(progressOf)
    const later = sets.map((set, i) => sink.send(set, progress[i]).catch((err: unknown) => err))
    await vi.waitFor(() => expect(cluster.produced).toHaveLength(2), until)
    await turns()
    expect(cluster.produced[1]!.partitions.map((p) => p.partition)).toEqual([1])
    cluster.holding = false
    cluster.release()
    expect((await first).size).toBe(0)
    await vi.waitFor(() => expect(cluster.produced.length).toBeGreaterThanOrEqual(3), until)
    return { progress, later, request: cluster.produced[2]! }
  }

  it("two requests' records for one partition share one batch, answered when it is acknowledged", async () => {
    const cluster = new FakeCluster({ t: [1, 1] })
    const sink = await connected(cluster)
    const { progress, later, request } = await twoQueuedBehindOne(cluster, sink)
    expect(request.partitions.map((p) => p.partition)).toEqual([0])
    const merged = request.partitions[0]!.batch
    // One batch: both requests' records, offsets 0…4, its sequence after the first batch's 3 records.
    expect(merged.readInt32BE(53)).toBe(3)
    const { records } = decodeRecordBatch(merged)
    expect(records.map((r) => [r.offsetDelta, r.value.toString()])).toEqual([
      [0, 'b0-0'],
      [1, 'b0-1'],
      [2, 'b0-2'],
      [3, 'c0-0'],
      [4, 'c0-1'],
    ])
    expect((await later[0]) as Map<number, unknown>).toHaveProperty('size', 0)
    expect((await later[1]) as Map<number, unknown>).toHaveProperty('size', 0)
    expect(progress.map((p) => [...p.acked])).toEqual([[ACKED], [ACKED, ACKED]])
    // Batches as Kafka got them: the first, the merged one, partition 1's.
    expect(cluster.produced).toHaveLength(3)
    expect(sink.stats).toMatchObject({ requests: 3, batches: 3, records: 10, merged: 2, errors: 0 })
    expect(sink.bufferedBytes).toBe(0)
  })

  it('a merged batch Kafka refuses fails every request whose records it held, and only those', async () => {
    const cluster = new FakeCluster({ t: [1, 1] })
    const sink = await connected(cluster)
    cluster.answer = (_topic, partition) => (cluster.produced.length === 3 && partition === 0 ? 87 : 0) // INVALID_RECORD
    const { progress, later } = await twoQueuedBehindOne(cluster, sink)
    const [b, c] = [
      (await later[0]) as Map<number, KafkaRefusedError>,
      (await later[1]) as Map<number, KafkaRefusedError>,
    ]
    expect([...b.keys()]).toEqual([0])
    expect([...c.keys()]).toEqual([0])
    expect(b.get(0)!.kafkaError).toBe('INVALID_RECORD')
    expect(c.get(0)!.message).toContain('t/0')
    expect(progress.map((p) => [...p.acked])).toEqual([[REFUSED], [REFUSED, ACKED]])
    expect(sink.bufferedBytes).toBe(0)
  })

  it('a merged batch never acknowledged: both requests fail at their deadline, saying it may be written', async () => {
    const cluster = new FakeCluster({ t: [1, 1] })
    const sink = await connected(cluster, 2000)
    cluster.answer = () => (cluster.produced.length >= 3 ? 'silent' : 0)
    const { later } = await twoQueuedBehindOne(cluster, sink)
    for (const failure of [await later[0], await later[1]]) {
      expect(failure).toBeInstanceOf(NotDurableError)
      expect((failure as Error).message).toMatch(/t\/0.* may still be written/)
    }
  })

  it("with a linger, a send goes at once when its leader's last request is answered and a linger old; what comes meanwhile waits, merged", async () => {
    // Only Date is faked: the linger is read from it, and moved on by hand (no test waits it out).
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      const cluster = new FakeCluster({ t: [1, 1] })
      const sink = await connected(cluster, 120_000, undefined, 60_000)
      cluster.holding = true
      const first = sink.send(batches('t', [0], 3, 'a'))
      await vi.waitFor(() => expect(cluster.produced).toHaveLength(1), until)
      const later = [sink.send(batches('t', [0], 3, 'b')), sink.send(batches('t', [0, 1], 2, 'c'))]
      await turns()
      // Partition 1 has nothing in flight, but its leader has: it waits too.
      expect(cluster.produced).toHaveLength(1)
      cluster.holding = false
      cluster.release()
      expect((await first).size).toBe(0)
      await turns()
      // Answered, but the last request went less than the linger ago: still waiting.
      expect(cluster.produced).toHaveLength(1)
      vi.setSystemTime(Date.now() + 60_000)
      later.push(sink.send(batches('t', [1], 1, 'd'))) // a pump, a linger after the first request
      for (const send of later) expect((await send).size).toBe(0)
      expect(cluster.produced).toHaveLength(2)
      const request = cluster.produced[1]!
      expect(request.partitions.map((p) => p.partition)).toEqual([0, 1])
      const values = (i: number) =>
        decodeRecordBatch(request.partitions[i]!.batch).records.map((r) => r.value.toString())
      expect(values(0)).toEqual(['b0-0', 'b0-1', 'b0-2', 'c0-0', 'c0-1'])
      expect(values(1)).toEqual(['c1-0', 'c1-1', 'd1-0'])
      expect(sink.stats).toMatchObject({ requests: 2, batches: 3, records: 11, merged: 4, errors: 0 })
      // Answered and a linger old again: a lone send goes at once.
      vi.setSystemTime(Date.now() + 60_000)
      expect((await sink.send(batches('t', [1], 1, 'e'))).size).toBe(0)
      expect(cluster.produced).toHaveLength(3)
    } finally {
      vi.useRealTimers()
    }
  })

  it('batches are merged up to maxBatchBytes: beyond it each goes in a request of its own', async () => {
    const cluster = new FakeCluster({ t: [1, 1] })
    const small = batches('t', [0]).batches[0]!.length
    const sink = await connected(cluster, 30_000, small + 1)
    const { request } = await twoQueuedBehindOne(cluster, sink)
    expect(decodeRecordBatch(request.partitions[0]!.batch).records).toHaveLength(3)
    await vi.waitFor(() => expect(cluster.produced).toHaveLength(4), until)
    expect(decodeRecordBatch(cluster.produced[3]!.partitions[0]!.batch).records).toHaveLength(2)
    expect(sink.stats.merged).toBe(0)
  })

  it('a Kafka that never answers: send() rejects at the ack deadline, naming the partitions that may still be written', async () => {
    const cluster = new FakeCluster({ t: [1] })
    const sink = await connected(cluster, 400)
    cluster.answer = () => 'silent'
    const failure = await sink.send(batches('t', [0])).catch((err: unknown) => err)
    expect(failure).toBeInstanceOf(NotDurableError)
    expect(failure).not.toBeInstanceOf(KafkaRefusedError)
    expect((failure as Error).message).toMatch(/did not acknowledge within 400 ms.*t\/0 may still be written/)
    expect(cluster.produced.length).toBeGreaterThan(0)
  })

  it('a partition without a leader is not available (the others are), and is again once it has one', async () => {
    // Partition 1 has none; partition 2's leader (7) is not among the brokers the metadata lists.
    const cluster = new FakeCluster({ t: [1, -1, 7] })
    const sink = await connected(cluster, 400)
    expect(sink.available('t', 0)).toBe(true)
    expect(sink.available('t', 1)).toBe(false)
    expect(sink.available('t', 2)).toBe(false)

    // Its batch is never sent: withdrawn at the deadline, the answer says so.
    const failure = await sink.send(batches('t', [1])).catch((err: unknown) => err)
    expect(failure).toBeInstanceOf(NotDurableError)
    expect((failure as Error).message).toMatch(/none of these events were sent/)
    expect(cluster.produced).toHaveLength(0)

    // The sink asks for metadata again while a partition is leaderless.
    cluster.leaders.t![1] = 1
    await vi.waitFor(() => expect(sink.available('t', 1)).toBe(true), until)
    expect(sink.available('t', 2)).toBe(false)
  })

  it('close() rejects later sends, and nothing more reaches the broker', async () => {
    const cluster = new FakeCluster({ t: [1] })
    const sink = await connected(cluster)
    expect((await sink.send(batches('t', [0]))).size).toBe(0)
    expect(sink.ready).toBe(true)
    await sink.close()
    expect(sink.ready).toBe(false)
    await expect(sink.send(batches('t', [0]))).rejects.toThrow(new NotDurableError('the producer is closed'))
    await turns()
    expect(cluster.produced).toHaveLength(1)
  })
})
