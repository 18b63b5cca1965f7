// What every SQL storage adapter is held to (test/storage/duckdb.test.ts, postgres.test.ts): a run
// over a funnel with crashes leaves exactly the reference tables and every raw record once, and a
// replay from offset 0 changes nothing.
import { expect } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
import type { Storage } from '../../correlator/storage.js'
import { ArraySource, runToEnd } from './array-source.js'
import { allRecords, funnelEvents, PARTITIONS, toLogs } from './funnel-records.js'
import { expectedRawKeys, storedRawKeys } from './raw-tables.js'
import { type Expected, reference } from './reference.js'
import { sqlTables } from './tables.js'

export const CRASH_RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 2 * 60_000 }

export interface SqlStorage extends Storage {
  query(sql: string): Promise<Record<string, unknown>[]>
}

/**
 * Runs the correlator over a seeded funnel, stopped after `stops` batches (the last run to the
 * end), each run with a storage opened anew as a new process would; then checks the tables and
 * replays everything from 0 into the last one. Returns that storage, still open, and the tables.
 */
export async function expectCrashSafeRun<S extends SqlStorage>(
  open: () => Promise<S>,
  { seed, stops, sourceSeed }: { seed: number; stops: number[]; sourceSeed: number },
): Promise<{ storage: S; expected: Expected; replay: ArraySource }> {
  const logs = toLogs(
    funnelEvents({ seed, bids: 6000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02, botClicks: 0.2 }),
  )
  const expected = await reference(allRecords(logs), CRASH_RULES)
  let committed: Map<string, number> | undefined
  let t = 0
  const correlator = (storage: S, source: ArraySource) =>
    new Correlator(
      { rules: CRASH_RULES, storage, source, checkpointMs: 5, idleMs: 1e9, now: () => t++, rawEvents: true },
      PARTITIONS,
    )
  for (const [i, stopAfter] of [...stops, Number.POSITIVE_INFINITY].entries()) {
    // A new process each time: state comes back from the storage's checkpoints.
    const storage = await open()
    const source = new ArraySource(logs, sourceSeed + i, PARTITIONS, stopAfter, committed)
    await runToEnd(correlator(storage, source))
    await storage.close()
    committed = source.committed
  }
  const storage = await open()
  try {
    const tables = (s: S) => sqlTables((sql) => s.query(sql))
    expect(await tables(storage)).toEqual(expected)
    // Raw tables: every record once, crashes and their re-reads notwithstanding.
    const rawKeys = expectedRawKeys(logs)
    expect(await storedRawKeys((sql) => storage.query(sql))).toEqual(rawKeys)
    const replay = new ArraySource(logs, sourceSeed + 99, PARTITIONS)
    const again = correlator(storage, replay)
    await again.start()
    await again.stop()
    expect(await tables(storage)).toEqual(expected)
    expect(await storedRawKeys((sql) => storage.query(sql))).toEqual(rawKeys)
    return { storage, expected, replay }
  } catch (err) {
    await storage.close()
    throw err
  }
}
