import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import { ParquetStorage } from '../../storage/parquet.js'
import { ArraySource } from '../support/array-source.js'
import { funnelEvents, PARTITIONS, toLogs } from '../support/funnel-records.js'

const dir = mkdtempSync(join(tmpdir(), 'adgate-parquet-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('Parquet sink', () => {
  it('writes hive-partitioned files (dt=/hour=) that read back as the tables, and a replay rewrites, not appends', async () => {
    const events = funnelEvents({ seed: 31, bids: 3000, duplicates: 0.05, outOfOrder: 0.1 })
    // Some bids carry fields their sender posted beside the request (the envelope's _unknown).
    events.forEach(({ type, event }, i) => {
      if (type === 'bid' && i % 7 === 0) event._unknown = JSON.stringify({ x_note: [i, 'é'] })
    })
    const logs = toLogs(events)
    const out = join(dir, 'lake')
    const run = async (seed: number) => {
      const storage = await ParquetStorage.open(join(dir, 'state.duckdb'), out, { intervalMs: 0 })
      const c = new Correlator(
        {
          rules: DEFAULT_RULES,
          storage,
          source: new ArraySource(logs, seed, PARTITIONS),
          checkpointMs: 50,
          idleMs: 1e9,
          rawEvents: true,
        },
        PARTITIONS,
      )
      await c.start()
      await c.stop()
      return storage
    }
    await (await run(1)).close()
    const days = readdirSync(join(out, 'impressions'))
    expect(days).toEqual(['dt=2026-11-01'])
    expect(readdirSync(join(out, 'impressions', 'dt=2026-11-01'))).toContain('hour=00')
    expect(existsSync(join(out, 'campaign_stats_hour', 'dt=2026-11-01', 'hour=00', 'data.parquet'))).toBe(
      true,
    )

    const storage = await run(2) // replay from offset 0 over the same tables and files
    await storage.export()
    const read = (sql: string) => storage.query(sql)
    const fromFiles = await read(
      `SELECT count(*)::INT AS n, sum(cost_micros)::BIGINT AS spend, count(DISTINCT dt)::INT AS days
       FROM read_parquet('${out}/impressions/*/*/*.parquet', hive_partitioning = true)`,
    )
    const fromTable = await read(
      'SELECT count(*)::INT AS n, sum(cost_micros)::BIGINT AS spend, 1 AS days FROM impressions',
    )
    expect(fromFiles).toEqual(fromTable)
    expect((fromTable[0] as { n: number }).n).toBeGreaterThan(500)
    const stats = await read(
      `SELECT sum(impressions)::BIGINT AS i, sum(clicks)::BIGINT AS c FROM read_parquet('${out}/campaign_stats_hour/*/*/*.parquet')`,
    )
    expect(stats).toEqual(
      await read('SELECT sum(impressions)::BIGINT AS i, sum(clicks)::BIGINT AS c FROM campaign_stats_hour'),
    )
    // Raw tables: every record once in the files too (the replay re-read them, wrote nothing new).
    const rawFrom = (from: string) =>
      read(
        `SELECT count(*)::INT AS n, count(DISTINCT event_id)::INT AS ids, count(DISTINCT kafka_offset)::INT AS offsets FROM ${from}`,
      )
    const bids = [...logs.values()].flat().filter((r) => r.topic === 'adgate.bids').length
    expect((await rawFrom('raw_bids'))[0]).toMatchObject({ n: bids })
    for (const table of ['raw_bids', 'raw_bid_imps', 'raw_impressions', 'raw_clicks', 'raw_conversions'])
      expect(await rawFrom(`read_parquet('${out}/${table}/*/*/*.parquet')`)).toEqual(await rawFrom(table))
    const unknowns = (from: string) =>
      read(`SELECT kafka_offset, _unknown FROM ${from} WHERE _unknown IS NOT NULL ORDER BY ALL`)
    const kept = await unknowns('raw_bids')
    expect(kept.length).toBeGreaterThan(10)
    expect(await unknowns(`read_parquet('${out}/raw_bids/*/*/*.parquet')`)).toEqual(kept)
    await storage.close()
  })
})
