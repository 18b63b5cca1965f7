import { expect } from 'vitest'
// The correlator's tables from a MemoryStorage, shaped like the reference's rows.
import { AGG_FIELDS } from '../../correlator/rows.js'
import type { MemoryStorage } from '../../storage/memory.js'
import { type Expected, normalize } from './reference.js'

export function memoryTables(s: MemoryStorage): Expected {
  const sortBy = <T>(rows: T[], key: (r: T) => string) => rows.sort((a, b) => (key(a) < key(b) ? -1 : 1))
  const agg = (m: Map<string, number[]>) =>
    [...m.entries()]
      .map(([k, v]) => {
        const [campaign_id, bucket] = k.split('\u0000') as [string, string]
        return {
          campaign_id,
          bucket: Number(bucket),
          ...Object.fromEntries(AGG_FIELDS.map((f, i) => [f, v[i]!])),
        }
      })
      .filter((r) => AGG_FIELDS.some((f) => (r as unknown as Record<string, number>)[f] !== 0))
      .sort((a, b) => a.bucket - b.bucket || (a.campaign_id < b.campaign_id ? -1 : 1))
  return {
    impressions: sortBy([...s.impressions.values()], (r) => r.impression_id) as unknown as Record<
      string,
      unknown
    >[],
    clicks: sortBy([...s.clicks.values()], (r) => r.click_id) as unknown as Record<string, unknown>[],
    conversions: sortBy([...s.conversions.values()], (r) => r.conversion_id) as unknown as Record<
      string,
      unknown
    >[],
    late: [...s.late.values()]
      .map((r) => ({
        topic: r.topic,
        partition: r.partition,
        offset: r.offset,
        event_id: r.event_id,
        event_time: r.event_time,
      }))
      .sort((a, b) =>
        a.topic < b.topic
          ? -1
          : a.topic > b.topic
            ? 1
            : a.partition - b.partition || Number(a.offset) - Number(b.offset),
      ),
    minute: agg(s.minute),
    hour: agg(s.hour),
  }
}

/** The same shape from any SQL sink, given a function that runs a query and returns JSON rows. */
export async function sqlTables(
  query: (sql: string) => Promise<Record<string, unknown>[]>,
  topicPrefix = '',
): Promise<Expected> {
  const sums = AGG_FIELDS.map((f) => `sum(${f})::BIGINT AS ${f}`).join(', ')
  const agg = (g: string) =>
    `SELECT campaign_id, bucket, ${sums} FROM agg_${g} GROUP BY campaign_id, bucket
     HAVING ${AGG_FIELDS.map((f) => `sum(${f}) <> 0`).join(' OR ')} ORDER BY bucket, campaign_id`
  const n = (rows: Record<string, unknown>[]) => normalize(rows)
  return {
    impressions: n(await query('SELECT * FROM impressions ORDER BY impression_id')),
    clicks: n(await query('SELECT * FROM clicks ORDER BY click_id')),
    conversions: n(await query('SELECT * FROM conversions ORDER BY conversion_id')),
    late: n(
      (
        await query(
          `SELECT topic, kafka_partition AS partition, kafka_offset::TEXT AS "offset", event_id, event_time FROM late_events ORDER BY topic, kafka_partition, kafka_offset`,
        )
      ).map((r) => ({ ...r, topic: String(r.topic).slice(topicPrefix.length) })),
    ),
    minute: n(await query(agg('minute'))),
    hour: n(await query(agg('hour'))),
  }
}

/** Table by table, so a failure names the table and shows the differing rows. */
export function expectTables(actual: Expected, expected: Expected): void {
  for (const k of Object.keys(expected) as (keyof Expected)[]) {
    const want = expected[k]
    const got = actual[k]
    const key = (r: Record<string, unknown>) => JSON.stringify(r)
    const wantSet = new Set(want.map(key))
    const gotSet = new Set(got.map(key))
    const missing = want.filter((r) => !gotSet.has(key(r))).slice(0, 5)
    const extra = got.filter((r) => !wantSet.has(key(r))).slice(0, 5)
    expect({ table: k, rows: got.length, missing, extra }).toEqual({
      table: k,
      rows: want.length,
      missing: [],
      extra: [],
    })
  }
}
