import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { PostgresStorage } from '../../storage/postgres.js'
import { expectCrashSafeRun } from '../support/crash-safe-run.js'
import { freshDatabase } from '../support/postgres.js'

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
    const { storage, expected } = await expectCrashSafeRun(() => PostgresStorage.open(db.url), {
      seed: 21,
      stops: [9, 25],
      sourceSeed: 200,
    })
    try {
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
