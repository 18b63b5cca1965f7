import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { type DuckDBAppender, type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api'
// Declaration mirrored in storage/postgres.ts and storage/memory.ts: each adapter implements the correlator's Storage.
import { AGG_FIELDS, type AggDelta, type LateRow } from '../correlator/rows.js'
import {
  type PartitionLoad,
  type Position,
  StaleOwnerError,
  type StatsQuery,
  type StatsRow,
  type Storage,
  statsRow,
  tpKey,
  type WriteBatch,
} from '../correlator/storage.js'
import { RAW_TABLES, type RawTable, rawRows } from './raw-tables.js'
import {
  aggUpsert,
  anomalyUpsert,
  checkpointsTable,
  ddl,
  FACT_COLUMNS,
  type FactTable,
  factUpsert,
  LATE_COLUMNS,
} from './schema.js'
import { StateFiles } from './state-files.js'

export interface DuckDbOptions {
  readOnly?: boolean
  /** DuckDB's buffer pool limit, bytes (its own default is 80 % of the machine's RAM). */
  memoryLimit?: number
  /** DuckDB's worker threads. */
  threads?: number
}

/**
 * ADGATE_DUCKDB_MEMORY_LIMIT and ADGATE_DUCKDB_THREADS default to these (config/settings.ts).
 * One thread: a write is a few set-based statements over one batch, and DuckDB's workers cost the
 * correlator CPU (in-process on the join bench's Kafka path, 2 rounds at load 16-21: 19.1 against
 * 22.8 CPU-s per million events); queries on large tables are slower.
 */
export const DUCKDB_DEFAULTS = { memoryLimit: 1 << 30, threads: 1 } as const

/**
 * The embedded default: one DuckDB file. A batch is staged into temporary tables with DuckDB's
 * appender (column values straight into its vectors, no SQL text per row), then merged into
 * the real tables by a few set-based upserts inside one transaction.
 *
 * DuckDB allows one writing process per file, so several correlator instances on DuckDB share
 * one process and this object; writes are serialized here. Across machines, use PostgreSQL.
 *
 * Join-state checkpoints are files in `<file>.state/` (storage/state-files.ts); the checkpoints
 * table names each partition's, committed with its positions. Opening a database whose checkpoints
 * table still holds the state (before 2026-12-06) moves the state to files.
 */
export class DuckDbStorage implements Storage {
  readonly kind = 'duckdb'
  private chain: Promise<unknown> = Promise.resolve()
  /** Per raw table, its columns in the file's order: indexes into RawTable.columns, -1 for none. */
  private readonly rawLayout = new Map<RawTable, number[]>()

  private constructor(
    private readonly instance: DuckDBInstance,
    readonly conn: DuckDBConnection,
    readonly path: string,
    readonly states: StateFiles,
  ) {}

  static async open(path: string, options: DuckDbOptions = {}): Promise<DuckDbStorage> {
    const memory = path === ':memory:'
    if (!memory) mkdirSync(dirname(path), { recursive: true })
    // An in-memory database keeps its state files in a directory of its own, removed on close.
    const states = memory
      ? StateFiles.open(mkdtempSync(join(tmpdir(), 'adgate-duckdb-state-')))
      : StateFiles.open(`${path}.state`, !options.readOnly)
    const instance = await DuckDBInstance.create(path, {
      ...(options.readOnly ? { access_mode: 'READ_ONLY' } : {}),
      memory_limit: `${options.memoryLimit ?? DUCKDB_DEFAULTS.memoryLimit}B`,
      threads: String(options.threads ?? DUCKDB_DEFAULTS.threads),
    })
    const conn = await instance.connect()
    const s = new DuckDbStorage(instance, conn, path, states)
    if (!options.readOnly) {
      for (const stmt of ddl('duckdb')) await conn.run(stmt)
      await s.migrateCheckpoints()
      const named = await conn.runAndReadAll('SELECT state_file FROM checkpoints')
      await states.clean(new Set((named.getRows() as [string][]).map(([f]) => f)))
      for (const t of Object.keys(FACT_COLUMNS))
        await conn.run(`CREATE TEMP TABLE s_${t} AS SELECT * FROM ${t} LIMIT 0`)
      await conn.run('CREATE TEMP TABLE s_late AS SELECT * FROM late_events LIMIT 0')
      for (const g of ['minute', 'hour'])
        await conn.run(`CREATE TEMP TABLE s_agg_${g} AS SELECT * FROM agg_${g} LIMIT 0`)
      await conn.run('CREATE TEMP TABLE s_positions AS SELECT * FROM positions LIMIT 0')
      for (const t of RAW_TABLES) s.rawLayout.set(t, await physicalOrder(conn, t))
    }
    return s
  }

  /**
   * A checkpoints table with the state in a BLOB column (the layout before state files): each
   * state goes to a file, then one transaction replaces the table by one naming the files. A crash
   * before its commit leaves the old table, and files that the next open's clean removes.
   */
  private async migrateCheckpoints(): Promise<void> {
    const c = this.conn
    const cols = await c.runAndReadAll(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = 'checkpoints'",
    )
    if (!(cols.getRows() as [string][]).some(([n]) => n === 'state')) return
    const old = await c.runAndReadAll('SELECT part, positions, state, written_at FROM checkpoints')
    const rows = old.getRows() as [number, string, { bytes: Uint8Array }, bigint][]
    const files = await this.states.write(
      rows.map(([partition, , state]) => ({ partition, state: Buffer.from(state.bytes) })),
    )
    await c.run('BEGIN TRANSACTION')
    try {
      await c.run(checkpointsTable('duckdb', 'checkpoints_files'))
      for (const [i, [part, positions, , writtenAt]] of rows.entries())
        await c.run('INSERT INTO checkpoints_files VALUES ($1, $2, $3, $4)', [
          part,
          positions,
          files[i]!,
          writtenAt,
        ])
      await c.run('DROP TABLE checkpoints')
      await c.run('ALTER TABLE checkpoints_files RENAME TO checkpoints')
      await c.run('COMMIT')
    } catch (err) {
      await c.run('ROLLBACK').catch(() => {})
      throw err
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn)
    this.chain = next.catch(() => {})
    return next
  }

  load(partition: number, topics: readonly string[]): Promise<PartitionLoad> {
    return this.exclusive(async () => {
      const positions = new Map<string, string>()
      const rows = await this.conn.runAndReadAll(
        'SELECT topic, next_offset FROM positions WHERE kafka_partition = $1',
        [partition],
      )
      for (const [topic, next] of rows.getRows() as [string, bigint][])
        if (topics.includes(topic)) positions.set(tpKey(topic, partition), next.toString())
      const cp = await this.conn.runAndReadAll(
        'SELECT positions, state_file FROM checkpoints WHERE part = $1',
        [partition],
      )
      const row = cp.getRows()[0] as [string, string] | undefined
      return {
        positions,
        checkpoint: row
          ? { partition, positions: JSON.parse(row[0]), state: await this.states.read(row[1]) }
          : null,
      }
    })
  }

  write(batch: WriteBatch): Promise<void> {
    return this.exclusive(async () => {
      try {
        await this.writeNow(batch, false)
      } catch (err) {
        // A first statement of an impression was stored already: the transaction is rolled
        // back, and written again with every row upserted.
        if (!(err instanceof Error && /^Constraint Error: Duplicate key "impression_id/.test(err.message)))
          throw err
        await this.writeNow(batch, true)
      }
    })
  }

  /**
   * One transaction. `upsertAll` false: impressions not restated in the batch are first
   * statements and go in by a plain INSERT (its primary key still refuses one stored already);
   * the impressions upsert checks every row's key and rewrites those found, a third of this
   * storage's SQL time on the correlator bench.
   */
  private async writeNow(batch: WriteBatch, upsertAll: boolean): Promise<void> {
    const c = this.conn
    /** State files this write made, and those its checkpoints replace (removed once it commits). */
    let made: string[] = []
    const replaced: string[] = []
    let committing = false
    await c.run('BEGIN TRANSACTION')
    try {
      if (batch.expected.size > 0) {
        const stored = new Map<string, string>()
        const rows = await c.runAndReadAll('SELECT topic, kafka_partition, next_offset FROM positions')
        for (const [t, p, o] of rows.getRows() as [string, number, bigint][])
          stored.set(tpKey(t, p), o.toString())
        for (const [tp, expected] of batch.expected)
          if ((stored.get(tp) ?? null) !== expected) throw new StaleOwnerError(tp)
      }
      const o = batch.output
      if (upsertAll || o.restated.size === 0 || o.restated.size === o.impressions.size)
        await this.stageFacts('impressions', o.impressions.values(), upsertAll || o.restated.size > 0)
      else {
        const rows = [...o.impressions.values()]
        await this.stageFacts(
          'impressions',
          rows.filter((r) => !o.restated.has(r.impression_id)),
          false,
        )
        await this.stageFacts(
          'impressions',
          rows.filter((r) => o.restated.has(r.impression_id)),
          true,
        )
      }
      await this.stageFacts('clicks', o.clicks.values())
      await this.stageFacts('conversions', o.conversions.values())
      await this.stage('s_late', o.late, appendLate, LATE_MERGE)
      if (o.raw.length > 0) for (const [t, rows] of rawRows(o.raw)) await this.appendRaw(t, rows)
      await this.stageAgg('minute', o.minute.values())
      await this.stageAgg('hour', o.hour.values())
      // Anomalies are few (a handful per closed bucket at most): a statement each.
      for (const r of o.anomalies) {
        await c.run(anomalyUpsert('VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)'), [
          r.metric,
          r.subject,
          BigInt(r.bucket),
          BigInt(r.window_ms),
          r.expected_low,
          r.expected_high,
          r.observed,
          r.detail,
          BigInt(Date.now()),
        ])
      }
      await this.stage('s_positions', batch.positions, appendPosition, POSITIONS_MERGE)
      // The state is durable in its file before the row naming it commits.
      made = await this.states.write(batch.checkpoints)
      for (const [i, cp] of batch.checkpoints.entries()) {
        const old = await c.runAndReadAll('DELETE FROM checkpoints WHERE part = $1 RETURNING state_file', [
          cp.partition,
        ])
        for (const [f] of old.getRows() as [string][]) replaced.push(f)
        await c.run('INSERT INTO checkpoints VALUES ($1, $2, $3, $4)', [
          cp.partition,
          JSON.stringify(cp.positions),
          made[i]!,
          BigInt(Date.now()),
        ])
      }
      committing = true
      await c.run('COMMIT')
    } catch (err) {
      await c.run('ROLLBACK').catch(() => {})
      // A failed COMMIT may or may not have reached the disk: its files stay until the next
      // open's clean, which keeps those a committed row names.
      if (!committing) await this.states.remove(made)
      throw err
    }
    await this.states.remove(replaced)
  }

  /** `upsert` false: a plain INSERT, for rows known to be new. */
  private stageFacts(table: FactTable, rows: Iterable<object>, upsert = true): Promise<void> {
    const { names, kinds } = FACT_APPEND[table]
    const append = (a: DuckDBAppender, row: Record<string, unknown>) => {
      for (let i = 0; i < names.length; i++) {
        const v = row[names[i]!]
        if (v === null || v === undefined) a.appendNull()
        else if (kinds[i] === BIGINT) a.appendBigInt(BigInt(v as number))
        else if (kinds[i] === BOOLEAN) a.appendBoolean(v as boolean)
        else a.appendVarchar(v as string)
      }
    }
    const staging = `s_${table}`
    return this.stage(
      staging,
      rows as Iterable<Record<string, unknown>>,
      append,
      upsert
        ? factUpsert(table, `SELECT * FROM ${staging}`)
        : `INSERT INTO ${table} SELECT * FROM ${staging}`,
    )
  }

  private stageAgg(g: 'minute' | 'hour', rows: Iterable<AggDelta>): Promise<void> {
    return this.stage(`s_agg_${g}`, rows, appendAgg, aggUpsert(`agg_${g}`, `SELECT * FROM s_agg_${g}`))
  }

  /**
   * Appends `rows` to the temporary table `staging`, then runs `merge` (SQL reading it into the
   * real table) and empties it; nothing at all for no rows.
   */
  private async stage<T>(
    staging: string,
    rows: Iterable<T>,
    append: (a: DuckDBAppender, row: T) => void,
    merge: string,
  ): Promise<void> {
    let a: DuckDBAppender | undefined
    for (const row of rows) {
      a ??= await this.conn.createAppender(staging, 'main', 'temp')
      append(a, row)
      a.endRow()
    }
    if (a === undefined) return
    a.closeSync()
    await this.conn.run(merge)
    await this.conn.run(`DELETE FROM ${staging}`)
  }

  /**
   * Raw rows are only ever inserted (positions make each record's row once), so they go straight
   * into the table through the appender, inside the write's transaction; a decimal's text is
   * cast exactly by the appender.
   */
  private async appendRaw(table: RawTable, rows: unknown[][]): Promise<void> {
    if (rows.length === 0) return
    const a = await this.conn.createAppender(table.name)
    const layout = this.rawLayout.get(table)!
    const types = layout.map((i) => (i < 0 ? null : table.columns[i]!.type))
    for (const row of rows) {
      for (let j = 0; j < layout.length; j++) {
        const v = layout[j]! < 0 ? null : row[layout[j]!]
        if (v === null || v === undefined) a.appendNull()
        else if (types[j] === 'BIGINT') a.appendBigInt(BigInt(v as number | string))
        else if (types[j] === 'INTEGER') a.appendInteger(v as number)
        else if (types[j] === 'DOUBLE') a.appendDouble(v as number)
        else if (types[j] === 'BOOLEAN') a.appendBoolean(v as boolean)
        else a.appendVarchar(v as string)
      }
      a.endRow()
    }
    a.closeSync()
  }

  stats(q: StatsQuery): Promise<StatsRow[]> {
    return this.exclusive(async () => {
      const where: string[] = []
      const params: (string | bigint)[] = []
      if (q.campaign !== undefined) {
        params.push(q.campaign)
        where.push(`campaign_id = $${params.length}`)
      }
      if (q.from !== undefined) {
        params.push(BigInt(q.from))
        where.push(`bucket >= $${params.length}`)
      }
      if (q.to !== undefined) {
        params.push(BigInt(q.to))
        where.push(`bucket < $${params.length}`)
      }
      const sql = `SELECT * FROM campaign_stats_${q.granularity} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY bucket, campaign_id`
      const r = await this.conn.runAndReadAll(sql, params)
      return (r.getRowObjects() as Record<string, unknown>[]).map((row) =>
        statsRow(
          row.campaign_id as string,
          Number(row.bucket),
          Object.fromEntries(AGG_FIELDS.map((f) => [f, Number(row[f])])),
        ),
      )
    })
  }

  /** Plain SQL for tests and tools; JSON-friendly rows. */
  query(sql: string): Promise<Record<string, unknown>[]> {
    return this.exclusive(
      async () => (await this.conn.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[],
    )
  }

  /** Runs statements in the write order (exports after the writes they follow). */
  run(statements: string[]): Promise<void> {
    return this.exclusive(async () => {
      for (const sql of statements) await this.conn.run(sql)
    })
  }

  async close(): Promise<void> {
    await this.chain
    this.conn.closeSync()
    this.instance.closeSync()
    if (this.path === ':memory:') rmSync(this.states.dir, { recursive: true, force: true })
  }
}

/** A raw table's columns in the order the file has them (ALTER TABLE appends newer ones). */
async function physicalOrder(conn: DuckDBConnection, table: RawTable): Promise<number[]> {
  const r = await conn.runAndReadAll(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = $1 ORDER BY ordinal_position",
    [table.name],
  )
  return (r.getRows() as [string][]).map(([name]) => table.columns.findIndex((c) => c.name === name))
}

const LATE_MERGE = `INSERT INTO late_events SELECT ${LATE_COLUMNS.map(([n]) => n).join(', ')} FROM s_late ON CONFLICT DO NOTHING`
const POSITIONS_MERGE =
  'INSERT INTO positions SELECT * FROM s_positions ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset'

function appendLate(a: DuckDBAppender, r: LateRow): void {
  a.appendVarchar(r.topic)
  a.appendInteger(r.partition)
  a.appendBigInt(BigInt(r.offset))
  a.appendVarchar(r.event_type)
  a.appendVarchar(r.event_id)
  a.appendBigInt(BigInt(r.event_time))
  a.appendBigInt(BigInt(r.watermark))
  if (r.campaign_id === null) a.appendNull()
  else a.appendVarchar(r.campaign_id)
  a.appendBlob(r.value)
}

function appendAgg(a: DuckDBAppender, d: AggDelta): void {
  a.appendVarchar(d.campaign_id)
  a.appendBigInt(BigInt(d.bucket))
  a.appendSmallInt(d.stage)
  a.appendInteger(d.partition)
  for (let i = 0; i < AGG_FIELDS.length; i++) a.appendBigInt(BigInt(d.values[i]!))
}

function appendPosition(a: DuckDBAppender, p: Position): void {
  a.appendVarchar(p.topic)
  a.appendInteger(p.partition)
  a.appendBigInt(BigInt(p.offset))
}

const TEXT = 0
const BIGINT = 1
const BOOLEAN = 2

/** Each fact table's columns as the appender loop reads them: names, and a kind per column. */
const FACT_APPEND = Object.fromEntries(
  Object.entries(FACT_COLUMNS).map(([table, cols]) => [
    table,
    {
      names: cols.map(([n]) => n),
      kinds: cols.map(([, t]) =>
        t.startsWith('BIGINT') ? BIGINT : t.startsWith('BOOLEAN') ? BOOLEAN : TEXT,
      ),
    },
  ]),
) as Record<FactTable, { names: string[]; kinds: number[] }>
