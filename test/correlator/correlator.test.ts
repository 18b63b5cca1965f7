// Slow suite (simulated hours of traffic, seconds of CPU per test): npm test runs it, npm run test:unit does not.
import { describe, expect, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
import type { WriteBatch } from '../../correlator/storage.js'
import { MemoryStorage } from '../../storage/memory.js'
import { ArraySource, runToEnd } from '../support/array-source.js'
import { allRecords, funnelEvents, type Logs, PARTITIONS, toLogs } from '../support/funnel-records.js'
import { reference } from '../support/reference.js'
import { memoryTables } from '../support/tables.js'

const RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 2 * 60_000 }

/** Runs a correlator to the end of the logs, "crashing" it after `crashAfter` batches each time. */
async function run(
  logs: Logs,
  seed: number,
  crashAfter: number[] = [],
  storage = new MemoryStorage(),
  writeEveryRecords = 0,
) {
  let committed: Map<string, number> | undefined
  for (const [i, n] of [...crashAfter, Number.POSITIVE_INFINITY].entries()) {
    const source = new ArraySource(logs, seed * 31 + i, PARTITIONS, n, committed)
    const correlator = new Correlator(
      {
        rules: RULES,
        storage,
        source,
        checkpointMs: 0 + (seed % 3) * 1,
        idleMs: 3_600_000,
        now: clock(),
        writeEveryRecords,
        lingerMs: writeEveryRecords > 0 ? 1e9 : 0,
      },
      PARTITIONS,
    )
    await runToEnd(correlator)
    committed = source.committed
  }
  return storage
}

/** Memory storage whose writes with these ordinal numbers (1-based) fail and change nothing. */
class FailingStorage extends MemoryStorage {
  private writes = 0
  constructor(private readonly failing: Set<number>) {
    super()
  }
  override async write(batch: WriteBatch): Promise<void> {
    if (this.failing.has(++this.writes)) throw new Error(`storage unavailable (write ${this.writes})`)
    await super.write(batch)
  }
}

/** A fake wall clock that moves 1 ms per call: checkpoint intervals in "calls", not real time. */
function clock(): () => number {
  let t = 0
  return () => t++
}

describe('correlator vs the SQL reference', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: duplicates, out-of-order, late and bot clicks give the reference tables exactly`, async () => {
      const logs = toLogs(
        funnelEvents({ seed, bids: 12000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02, botClicks: 0.2 }),
      )
      const expected = await reference(allRecords(logs), RULES)
      // Sanity: the workload exercises every path the comparison is about.
      expect(expected.late.length).toBeGreaterThan(0)
      expect(expected.clicks.some((c) => c.is_bot)).toBe(true)
      expect(expected.impressions.some((i) => i.bid_time !== null)).toBe(true)
      expect(expected.conversions.some((c) => c.attributed)).toBe(true)
      const storage = await run(logs, seed)
      expect(memoryTables(storage)).toEqual(expected)
    })
  }

  it('is the same across crashes mid-run (state rebuilt from checkpoints and replay)', async () => {
    const logs = toLogs(funnelEvents({ seed: 7, bids: 3000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02 }))
    const expected = await reference(allRecords(logs), RULES)
    const storage = await run(logs, 7, [5, 3, 17, 1, 40])
    expect(memoryTables(storage)).toEqual(expected)
  })

  it('is the same with group commit (several batches per write) across crashes', async () => {
    const logs = toLogs(funnelEvents({ seed: 9, bids: 3000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02 }))
    const expected = await reference(allRecords(logs), RULES)
    const storage = await run(logs, 9, [12, 30, 7], new MemoryStorage(), 300)
    expect(memoryTables(storage)).toEqual(expected)
  })

  it('a write that fails loses nothing: the batch handed over again is written with what follows', async () => {
    const logs = toLogs(funnelEvents({ seed: 11, bids: 3000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02 }))
    const expected = await reference(allRecords(logs), RULES)
    const storage = new FailingStorage(new Set([2, 5, 6]))
    const source = new ArraySource(logs, 11, PARTITIONS)
    source.redeliverFailed = true
    const correlator = new Correlator(
      {
        rules: RULES,
        storage,
        source,
        checkpointMs: 0,
        idleMs: 3_600_000,
        now: clock(),
        writeEveryRecords: 300,
        lingerMs: 1e9,
      },
      PARTITIONS,
    )
    await correlator.start()
    await correlator.stop()
    expect(source.failures).toBe(3)
    expect(memoryTables(storage)).toEqual(expected)
  })

  it('replaying every log from offset 0 into the same tables changes nothing', async () => {
    const logs = toLogs(funnelEvents({ seed: 8, bids: 2000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02 }))
    const storage = await run(logs, 8)
    const before = structuredClone(memoryTables(storage))
    const source = new ArraySource(logs, 99, PARTITIONS) // nothing committed: reads from 0
    const again = new Correlator(
      { rules: RULES, storage, source, checkpointMs: 0, idleMs: 3_600_000, now: clock() },
      PARTITIONS,
    )
    await again.start()
    await again.stop()
    expect(source.batches).toBeGreaterThan(10)
    expect(memoryTables(storage)).toEqual(before)
  })
})
