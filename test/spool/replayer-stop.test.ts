// A graceful stop hands the spool to Kafka while Kafka takes batches, up to the shutdown deadline,
// instead of leaving acknowledged events on this machine's disk until the next start; when Kafka
// cannot take them it stops at once and says how many stay. Unit test: a fake producer.
import { afterAll, describe, expect, it } from 'vitest'
import type { BatchSet, BatchSink } from '../../kafka/batch-sink.js'
import { Replayer } from '../../spool/replayer.js'
import type { Spool } from '../../spool/spool.js'
import { batch, openSpool, recordingLogger } from './support.js'

const closers: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close()
})

const TOPIC = 'adgate.impressions'

/** A spool holding `perPartition` one-record batches on partitions 0 and 1. */
async function spoolWith(perPartition: number): Promise<Spool> {
  const spool = await openSpool('adgate-replayer-stop-')
  closers.push(() => spool.close())
  for (let i = 0; i < perPartition; i++)
    for (const p of [0, 1]) await spool.append(batch(TOPIC, [Buffer.from(`p${p}-${i}`)], p))
  return spool
}

/** A producer that takes every batch after a few ms (noting its partition), except on partitions in `down`. */
function fakeSink(ready: boolean, down = new Set<number>()) {
  const taken: number[] = []
  const sink = {
    ready,
    available: (_: string, partition: number) => !down.has(partition),
    refusal: () => null,
    send: async (set: BatchSet) => {
      const { partition } = set.batches[0]!
      if (down.has(partition)) throw new Error('no leader')
      await new Promise((r) => setTimeout(r, 5))
      taken.push(partition)
      return new Map()
    },
  } as unknown as BatchSink
  return { sink, taken }
}

describe('Replayer.stop(drainBy)', () => {
  it('keeps replaying until the spool is empty when Kafka takes batches', async () => {
    const spool = await spoolWith(20)
    const { sink, taken } = fakeSink(true)
    const replayer = new Replayer(spool, sink, recordingLogger().logger)
    replayer.start()
    // Stopped at once: without the drain, the first read's batches would be the only ones sent.
    expect(await replayer.stop(Date.now() + 30_000)).toBe(0)
    expect(spool.entries).toBe(0)
    expect(taken).toHaveLength(40)
    expect(replayer.stats).toMatchObject({ batches: 40, records: 40, dropped: 0 })
  })

  it('stops at once and reports what stays when Kafka is not ready', async () => {
    const spool = await spoolWith(5)
    const { sink, taken } = fakeSink(false)
    const replayer = new Replayer(spool, sink, recordingLogger().logger)
    replayer.start()
    expect(await replayer.stop(Date.now() + 120_000)).toBe(10)
    expect(taken).toEqual([])
    expect(spool.entries).toBe(10)
  })

  it('drains the partitions that have a leader and leaves the others for the next start', async () => {
    const spool = await spoolWith(5)
    const { sink, taken } = fakeSink(true, new Set([1]))
    const replayer = new Replayer(spool, sink, recordingLogger().logger)
    replayer.start()
    expect(await replayer.stop(Date.now() + 120_000)).toBe(5)
    expect(spool.partitions()).toMatchObject([{ topic: TOPIC, partition: 1 }])
    expect(taken).toEqual([0, 0, 0, 0, 0])
  })

  it('without drainBy, stops without waiting for the spool', async () => {
    const spool = await spoolWith(20)
    const { sink } = fakeSink(true)
    const replayer = new Replayer(spool, sink, recordingLogger().logger)
    replayer.start()
    expect(await replayer.stop()).toBeGreaterThan(0)
  })
})
