import pg from 'pg'
// Declaration mirrored in storage/duckdb.ts and storage/memory.ts: each adapter implements the correlator's Storage.
import { AGG_FIELDS, type AggDelta } from '../correlator/rows.js'
import {
  type PartitionLoad,
  StaleOwnerError,
  type StatsQuery,
  type StatsRow,
  type Storage,
  statsRow,
  tpKey,
  type WriteBatch,
} from '../correlator/storage.js'
import { type RawTable, rawRows } from './raw-tables.js'
import {
  aggUpsert,
  anomalyUpsert,
  ddl,
  FACT_COLUMNS,
  type FactTable,
  factUpsert,
  LATE_COLUMNS,
  rawInsert,
  sqlType,
} from './schema.js'

// BIGINT as JS numbers: every value adgate stores (ms, micros, counters) is below 2^53.
pg.types.setTypeParser(20, (v) => Number(v))

/**
 * PostgreSQL: the sink for several correlator instances on several machines. A batch is one
 * transaction; rows go in as arrays (`INSERT … SELECT * FROM unnest($1::text[], …)`), one
 * statement per table, so a batch of thousands of rows is a handful of round trips.
 *
 * Ownership: the transaction takes an advisory lock per partition number it writes, then checks
 * the stored positions against what this instance expects (the fence for takeovers).
 */
export class PostgresStorage implements Storage {
  readonly kind = 'postgres'

  private constructor(readonly pool: pg.Pool) {}

  static async open(url: string): Promise<PostgresStorage> {
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    const c = await pool.connect()
    try {
      await c.query('BEGIN')
      await c.query("SELECT pg_advisory_xact_lock(hashtext('adgate-schema'))")
      for (const stmt of ddl('postgres')) await c.query(stmt)
      await c.query('COMMIT')
    } catch (err) {
      await c.query('ROLLBACK')
      throw err
    } finally {
      c.release()
    }
    return new PostgresStorage(pool)
  }

  async load(partition: number, topics: readonly string[]): Promise<PartitionLoad> {
    const positions = new Map<string, string>()
    const rows = await this.pool.query<{ topic: string; next_offset: number }>(
      'SELECT topic, next_offset FROM positions WHERE kafka_partition = $1',
      [partition],
    )
    for (const r of rows.rows)
      if (topics.includes(r.topic)) positions.set(tpKey(r.topic, partition), String(r.next_offset))
    const cp = await this.pool.query<{ positions: string; state: Buffer }>(
      'SELECT positions, state FROM checkpoints WHERE part = $1',
      [partition],
    )
    const row = cp.rows[0]
    return {
      positions,
      checkpoint: row ? { partition, positions: JSON.parse(row.positions), state: row.state } : null,
    }
  }

  async write(batch: WriteBatch): Promise<void> {
    const c = await this.pool.connect()
    try {
      await c.query('BEGIN')
      const parts = new Set<number>()
      for (const p of batch.positions) parts.add(p.partition)
      for (const cp of batch.checkpoints) parts.add(cp.partition)
      for (const p of [...parts].sort((a, b) => a - b))
        await c.query("SELECT pg_advisory_xact_lock(hashtext('adgate-partition'), $1)", [p])
      if (batch.expected.size > 0) {
        const stored = new Map<string, string>()
        const rows = await c.query<{ topic: string; kafka_partition: number; next_offset: number }>(
          'SELECT topic, kafka_partition, next_offset FROM positions WHERE kafka_partition = ANY($1::int[])',
          [[...parts]],
        )
        for (const r of rows.rows) stored.set(tpKey(r.topic, r.kafka_partition), String(r.next_offset))
        for (const [tp, expected] of batch.expected)
          if ((stored.get(tp) ?? null) !== expected) throw new StaleOwnerError(tp)
      }
      const o = batch.output
      await this.facts(c, 'impressions', [...o.impressions.values()])
      await this.facts(c, 'clicks', [...o.clicks.values()])
      await this.facts(c, 'conversions', [...o.conversions.values()])
      if (o.late.length > 0) {
        const cols = LATE_COLUMNS.map(([n]) => n)
        const values: unknown[] = []
        const tuples = o.late.map((r, i) => {
          values.push(
            r.topic,
            r.partition,
            r.offset,
            r.event_type,
            r.event_id,
            r.event_time,
            r.watermark,
            r.campaign_id,
            r.value,
          )
          return `(${cols.map((_, j) => `$${i * cols.length + j + 1}`).join(', ')})`
        })
        await c.query(
          `INSERT INTO late_events (${cols.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`,
          values,
        )
      }
      if (o.raw.length > 0) for (const [t, rows] of rawRows(o.raw)) await this.raw(c, t, rows)
      await this.agg(c, 'minute', [...o.minute.values()])
      await this.agg(c, 'hour', [...o.hour.values()])
      if (o.anomalies.length > 0) {
        const a = o.anomalies
        const now = Date.now()
        await c.query(
          anomalyUpsert(
            'SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::float8[], $7::float8[], $8::text[], $9::bigint[])',
          ),
          [
            a.map((r) => r.metric),
            a.map((r) => r.subject),
            a.map((r) => r.bucket),
            a.map((r) => r.window_ms),
            a.map((r) => r.expected_low),
            a.map((r) => r.expected_high),
            a.map((r) => r.observed),
            a.map((r) => r.detail),
            a.map(() => now),
          ],
        )
      }
      if (batch.positions.length > 0) {
        await c.query(
          `INSERT INTO positions (topic, kafka_partition, next_offset)
           SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
           ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset`,
          [
            batch.positions.map((p) => p.topic),
            batch.positions.map((p) => p.partition),
            batch.positions.map((p) => p.offset),
          ],
        )
      }
      for (const cp of batch.checkpoints) {
        await c.query(
          `INSERT INTO checkpoints (part, positions, state, written_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (part) DO UPDATE SET positions = excluded.positions, state = excluded.state, written_at = excluded.written_at`,
          [cp.partition, JSON.stringify(cp.positions), cp.state, Date.now()],
        )
      }
      await c.query('COMMIT')
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }

  private async facts(c: pg.PoolClient, table: FactTable, rows: object[]): Promise<void> {
    if (rows.length === 0) return
    const cols = FACT_COLUMNS[table]
    const arrays = cols.map(([name]) => rows.map((r) => (r as Record<string, unknown>)[name] ?? null))
    const casts = cols.map(([, type], i) => `$${i + 1}::${pgType(type)}[]`)
    await c.query(factUpsert(table, `SELECT * FROM unnest(${casts.join(', ')})`), arrays)
  }

  /**
   * Rows as one JSON array of arrays, unpacked by the server: pg's array literals escape every
   * character of text columns in JS (the event's JSON most of all), JSON.stringify is native.
   */
  private async raw(c: pg.PoolClient, table: RawTable, rows: unknown[][]): Promise<void> {
    if (rows.length === 0) return
    const cols = table.columns.map((col, i) => `(r->>${i})::${sqlType(col.type, 'postgres')}`)
    await c.query(rawInsert(table, `SELECT ${cols.join(', ')} FROM json_array_elements($1::json) AS r`), [
      JSON.stringify(rows),
    ])
  }

  private async agg(c: pg.PoolClient, g: 'minute' | 'hour', rows: AggDelta[]): Promise<void> {
    if (rows.length === 0) return
    const arrays: unknown[][] = [
      rows.map((r) => r.campaign_id),
      rows.map((r) => r.bucket),
      rows.map((r) => r.stage),
      rows.map((r) => r.partition),
      ...AGG_FIELDS.map((_, i) => rows.map((r) => r.values[i]!)),
    ]
    const casts = ['text', 'bigint', 'smallint', 'int', ...AGG_FIELDS.map(() => 'bigint')].map(
      (t, i) => `$${i + 1}::${t}[]`,
    )
    await c.query(aggUpsert(`agg_${g}`, `SELECT * FROM unnest(${casts.join(', ')})`), arrays)
  }

  async stats(q: StatsQuery): Promise<StatsRow[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (q.campaign !== undefined) {
      params.push(q.campaign)
      where.push(`campaign_id = $${params.length}`)
    }
    if (q.from !== undefined) {
      params.push(q.from)
      where.push(`bucket >= $${params.length}`)
    }
    if (q.to !== undefined) {
      params.push(q.to)
      where.push(`bucket < $${params.length}`)
    }
    const r = await this.pool.query<Record<string, number | string>>(
      `SELECT * FROM campaign_stats_${q.granularity} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY bucket, campaign_id`,
      params,
    )
    return r.rows.map((row) =>
      statsRow(
        row.campaign_id as string,
        Number(row.bucket),
        Object.fromEntries(AGG_FIELDS.map((f) => [f, Number(row[f])])),
      ),
    )
  }

  async query(sql: string): Promise<Record<string, unknown>[]> {
    return (await this.pool.query(sql)).rows
  }

  async close(): Promise<void> {
    await this.pool.end()
  }
}

function pgType(type: string): string {
  if (type.startsWith('BIGINT')) return 'bigint'
  if (type.startsWith('BOOLEAN')) return 'boolean'
  return 'text'
}
