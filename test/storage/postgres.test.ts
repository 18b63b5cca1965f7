import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
import { PostgresStorage } from '../../storage/postgres.js'
import { ArraySource, runToEnd } from '../support/array-source.js'
import { allRecords, funnelEvents, PARTITIONS, toLogs } from '../support/funnel-records.js'
import { freshDatabase } from '../support/postgres.js'
import { expectedRawKeys, storedRawKeys } from '../support/raw-tables.js'
import { reference } from '../support/reference.js'
import { sqlTables } from '../support/tables.js'

const RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 2 * 60_000 }
const url = inject('postgresUrl')

describe.skipIf(!url)('PostgreSQL storage (real server)', () => {
  let db: { url: string; drop: () => Promise<void> }
  beforeAll(async () => {
    db = await freshDatabase(url)
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('holds exactly the reference tables after a run with crashes, and a replay from 0 changes nothing', async () => {
    const logs = toLogs(
      funnelEvents({ seed: 21, bids: 6000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02, botClicks: 0.2 }),
    )
    const expected = await reference(allRecords(logs), RULES)
    let committed: Map<string, number> | undefined
    let t = 0
    for (const [i, stopAfter] of [9, 25, Number.POSITIVE_INFINITY].entries()) {
      const storage = await PostgresStorage.open(db.url)
      const source = new ArraySource(logs, 200 + i, PARTITIONS, stopAfter, committed)
      const c = new Correlator(
        { rules: RULES, storage, source, checkpointMs: 5, idleMs: 1e9, now: () => t++, rawEvents: true },
        PARTITIONS,
      )
      await runToEnd(c)
      await storage.close()
      committed = source.committed
    }
    const storage = await PostgresStorage.open(db.url)
    try {
      expect(await sqlTables((sql) => storage.query(sql))).toEqual(expected)
      // Raw tables: every record once, crashes and their re-reads notwithstanding.
      const rawKeys = expectedRawKeys(logs)
      expect(await storedRawKeys((sql) => storage.query(sql))).toEqual(rawKeys)
      const replay = new ArraySource(logs, 998, PARTITIONS)
      const again = new Correlator(
        {
          rules: RULES,
          storage,
          source: replay,
          checkpointMs: 5,
          idleMs: 1e9,
          now: () => t++,
          rawEvents: true,
        },
        PARTITIONS,
      )
      await again.start()
      await again.stop()
      expect(await sqlTables((sql) => storage.query(sql))).toEqual(expected)
      expect(await storedRawKeys((sql) => storage.query(sql))).toEqual(rawKeys)
      const rows = await storage.stats({ granularity: 'minute', campaign: 'cmp-002' })
      const want = expected.minute.filter((r) => r.campaign_id === 'cmp-002')
      expect(rows.map((r) => [r.bucket, r.impressions, r.clicks_valid, r.conversions])).toEqual(
        want.map((r) => [
          new Date(r.bucket as number).toISOString(),
          r.impressions,
          r.clicks_valid,
          r.conversions,
        ]),
      )
    } finally {
      await storage.close()
    }
  })
})
