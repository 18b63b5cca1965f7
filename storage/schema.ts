import { AGG_FIELDS } from '../correlator/rows.js'
import { RAW_TABLES, type RawTable, type SqlType } from './raw-tables.js'

/**
 * The correlator's tables, one definition for every SQL sink. Times are epoch milliseconds
 * (BIGINT); money is integer micros.
 *
 *   impressions      one row per impression with its bid (stage 1)
 *   clicks           one row per click with its impression time and IVT flags (stage 2)
 *   conversions      one row per conversion with its click time, attributed or not (stage 3)
 *   attributed_events  view: one row per impression with its bid, click and conversion facts
 *   late_events      events beyond the grace period, with their raw bytes
 *   raw_bids, raw_bid_imps, raw_impressions, raw_clicks, raw_conversions
 *                    every event taken in, typed columns and the whole event as JSON
 *                    (storage/raw-tables.ts); written with ADGATE_RAW_TABLES=on
 *   agg_minute, agg_hour  counters per (campaign, bucket, stage, partition): each row has one
 *                    owner, so instances never contend; campaign_stats_* views sum them
 *   campaign_quality_minute, campaign_quality_hour  views: per campaign, events taken, those
 *                    with data-quality flags, and the score (share without flags)
 *   anomalies        flags of the anomaly detector (correlator/anomaly.ts): metric, subject,
 *                    bucket, the expected band and the observed value; one row per
 *                    (metric, subject, bucket), rewritten if detected again after a replay
 *   positions        next offset per input topic-partition, written with the data
 *   checkpoints      join state per partition (PostgreSQL: the bytes; DuckDB: the name of a
 *                    file beside the database) and the positions it reflects
 */
export type Dialect = 'duckdb' | 'postgres'

export const FACT_COLUMNS = {
  impressions: [
    ['impression_id', 'TEXT PRIMARY KEY'],
    ['event_id', 'TEXT NOT NULL'],
    ['auction_id', 'TEXT NOT NULL'],
    ['campaign_id', 'TEXT NOT NULL'],
    ['creative_id', 'TEXT'],
    ['publisher_id', 'TEXT'],
    ['site_domain', 'TEXT'],
    ['device_type', 'TEXT'],
    ['country', 'TEXT'],
    ['impression_time', 'BIGINT NOT NULL'],
    ['cost_micros', 'BIGINT NOT NULL'],
    ['bid_event_id', 'TEXT'],
    ['bid_time', 'BIGINT'],
    ['bid_price_micros', 'BIGINT'],
    ['quality_flags', 'TEXT'],
  ],
  clicks: [
    ['click_id', 'TEXT PRIMARY KEY'],
    ['event_id', 'TEXT NOT NULL'],
    ['impression_id', 'TEXT NOT NULL'],
    ['campaign_id', 'TEXT NOT NULL'],
    ['click_time', 'BIGINT NOT NULL'],
    ['impression_time', 'BIGINT'],
    ['is_bot', 'BOOLEAN NOT NULL'],
    ['is_duplicate', 'BOOLEAN NOT NULL'],
    ['is_no_impression', 'BOOLEAN NOT NULL'],
    ['is_too_soon', 'BOOLEAN NOT NULL'],
    ['valid', 'BOOLEAN NOT NULL'],
    ['quality_flags', 'TEXT'],
  ],
  conversions: [
    ['conversion_id', 'TEXT PRIMARY KEY'],
    ['event_id', 'TEXT NOT NULL'],
    ['click_id', 'TEXT NOT NULL'],
    ['campaign_id', 'TEXT NOT NULL'],
    ['conversion_time', 'BIGINT NOT NULL'],
    ['conversion_type', 'TEXT NOT NULL'],
    ['value_micros', 'BIGINT NOT NULL'],
    ['click_time', 'BIGINT'],
    ['attributed', 'BOOLEAN NOT NULL'],
    ['quality_flags', 'TEXT'],
  ],
} as const

export type FactTable = keyof typeof FACT_COLUMNS

export const LATE_COLUMNS = [
  ['topic', 'TEXT NOT NULL'],
  ['kafka_partition', 'INTEGER NOT NULL'],
  ['kafka_offset', 'BIGINT NOT NULL'],
  ['event_type', 'TEXT NOT NULL'],
  ['event_id', 'TEXT NOT NULL'],
  ['event_time', 'BIGINT NOT NULL'],
  ['watermark', 'BIGINT NOT NULL'],
  ['campaign_id', 'TEXT'],
  ['value', 'BLOB'],
] as const

export const ANOMALY_COLUMNS = [
  ['metric', 'TEXT NOT NULL'],
  ['subject', 'TEXT NOT NULL'],
  ['bucket', 'BIGINT NOT NULL'],
  ['window_ms', 'BIGINT NOT NULL'],
  ['expected_low', 'DOUBLE PRECISION NOT NULL'],
  ['expected_high', 'DOUBLE PRECISION NOT NULL'],
  ['observed', 'DOUBLE PRECISION NOT NULL'],
  ['detail', 'TEXT'],
  ['detected_at', 'BIGINT NOT NULL'],
] as const

/** Upsert of anomaly rows from `source` (columns in ANOMALY_COLUMNS order). */
export function anomalyUpsert(source: string): string {
  const cols = ANOMALY_COLUMNS.map(([n]) => n)
  const set = cols
    .slice(3)
    .map((n) => `${n} = excluded.${n}`)
    .join(', ')
  return `INSERT INTO anomalies (${cols.join(', ')}) ${source} ON CONFLICT (metric, subject, bucket) DO UPDATE SET ${set}`
}

export function ddl(dialect: Dialect): string[] {
  const blob = dialect === 'postgres' ? 'BYTEA' : 'BLOB'
  const cols = (c: readonly (readonly [string, string])[]) =>
    c.map(([n, t]) => `${n} ${t.replace('BLOB', blob)}`).join(', ')
  const counters = AGG_FIELDS.map((f) => `${f} BIGINT NOT NULL DEFAULT 0`).join(', ')
  const sums = AGG_FIELDS.map((f) => `sum(${f})::BIGINT AS ${f}`).join(', ')
  const out: string[] = []
  for (const [table, c] of Object.entries(FACT_COLUMNS))
    out.push(`CREATE TABLE IF NOT EXISTS ${table} (${cols(c)})`)
  // Migrations: columns added since a table was first created, appended so that column order
  // stays the declared one (the DuckDB appenders rely on it).
  for (const table of Object.keys(FACT_COLUMNS))
    out.push(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS quality_flags TEXT`)
  out.push(
    `CREATE TABLE IF NOT EXISTS late_events (${cols(LATE_COLUMNS)}, PRIMARY KEY (topic, kafka_partition, kafka_offset))`,
  )
  for (const g of ['minute', 'hour']) {
    out.push(
      `CREATE TABLE IF NOT EXISTS agg_${g} (campaign_id TEXT NOT NULL, bucket BIGINT NOT NULL, stage SMALLINT NOT NULL, part INTEGER NOT NULL, ${counters}, PRIMARY KEY (campaign_id, bucket, stage, part))`,
    )
    for (const f of ['quality_events', 'quality_flagged'])
      out.push(`ALTER TABLE agg_${g} ADD COLUMN IF NOT EXISTS ${f} BIGINT DEFAULT 0`)
    out.push(
      `CREATE OR REPLACE VIEW campaign_stats_${g} AS SELECT campaign_id, bucket, ${sums} FROM agg_${g} GROUP BY campaign_id, bucket`,
    )
    out.push(
      `CREATE OR REPLACE VIEW campaign_quality_${g} AS SELECT campaign_id, bucket, sum(quality_events)::BIGINT AS events, sum(quality_flagged)::BIGINT AS flagged, 1 - sum(quality_flagged)::DOUBLE PRECISION / sum(quality_events) AS score FROM agg_${g} GROUP BY campaign_id, bucket HAVING sum(quality_events) > 0`,
    )
  }
  out.push(
    `CREATE TABLE IF NOT EXISTS anomalies (${cols(ANOMALY_COLUMNS)}, PRIMARY KEY (metric, subject, bucket))`,
  )
  for (const t of RAW_TABLES) {
    out.push(`CREATE TABLE IF NOT EXISTS ${t.name} (${rawColumns(t, dialect)})`)
    // Columns of a newer schema version: added, never reordered (writers name their columns).
    for (const c of t.columns)
      out.push(`ALTER TABLE ${t.name} ADD COLUMN IF NOT EXISTS ${c.name} ${sqlType(c.type, dialect)}`)
  }
  out.push(
    'CREATE TABLE IF NOT EXISTS positions (topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY (topic, kafka_partition))',
  )
  out.push(checkpointsTable(dialect, 'checkpoints'))
  // Dropped first: PostgreSQL cannot replace a view whose i.* gained a column in the middle.
  out.push('DROP VIEW IF EXISTS attributed_events')
  out.push(`CREATE VIEW attributed_events AS
    SELECT i.*, k.click_id, k.click_time, k.clicks, k.valid_clicks, k.click_valid,
           v.conversions, v.conversion_value_micros, v.first_conversion_time
    FROM impressions i
    LEFT JOIN (
      SELECT impression_id, count(*) AS clicks, sum(CASE WHEN valid THEN 1 ELSE 0 END) AS valid_clicks,
             min(click_time) AS click_time,
             min(click_id) FILTER (WHERE NOT is_duplicate) AS click_id,
             bool_or(valid) AS click_valid
      FROM clicks WHERE NOT is_no_impression GROUP BY impression_id
    ) k ON k.impression_id = i.impression_id
    LEFT JOIN (
      SELECT c.impression_id, count(*) AS conversions, sum(v.value_micros) AS conversion_value_micros,
             min(v.conversion_time) AS first_conversion_time
      FROM conversions v JOIN clicks c ON c.click_id = v.click_id
      WHERE v.attributed AND NOT c.is_no_impression GROUP BY c.impression_id
    ) v ON v.impression_id = i.impression_id`)
  return out
}

/**
 * Join state per partition with the positions it reflects. DuckDB keeps the state in a file beside
 * the database (storage/state-files.ts) and here only the file's name; PostgreSQL keeps it in the
 * row: it may be on another host, with no "beside", and instances on other machines read it.
 */
export function checkpointsTable(dialect: Dialect, name: string): string {
  const state = dialect === 'postgres' ? 'state BYTEA' : 'state_file TEXT'
  return `CREATE TABLE IF NOT EXISTS ${name} (part INTEGER PRIMARY KEY, positions TEXT NOT NULL, ${state} NOT NULL, written_at BIGINT NOT NULL)`
}

/**
 * A raw column's SQL type. DECIMAL: PostgreSQL's NUMERIC keeps any decimal exactly; DuckDB's
 * (and so Parquet's) DECIMAL(38,9) keeps nine places (a floor of 0.03 is 0.030000000).
 */
export function sqlType(type: SqlType, dialect: Dialect): string {
  if (type === 'DECIMAL') return dialect === 'postgres' ? 'NUMERIC' : 'DECIMAL(38,9)'
  if (type === 'DOUBLE') return 'DOUBLE PRECISION'
  return type
}

function rawColumns(t: RawTable, dialect: Dialect): string {
  return t.columns.map((c) => `${c.name} ${sqlType(c.type, dialect)}`).join(', ')
}

/**
 * Insert of raw rows from `source` (columns in RawTable order). No key to conflict on: positions
 * stored in the same transaction make each record's row once, as they make each count once.
 */
export function rawInsert(t: RawTable, source: string): string {
  return `INSERT INTO ${t.name} (${t.columns.map((c) => c.name).join(', ')}) ${source}`
}

/** Upsert of counter deltas: existing rows add, new rows insert. */
export function aggUpsert(table: string, source: string): string {
  const cols = ['campaign_id', 'bucket', 'stage', 'part', ...AGG_FIELDS]
  const set = AGG_FIELDS.map((f) => `${f} = ${table}.${f} + excluded.${f}`).join(', ')
  return `INSERT INTO ${table} (${cols.join(', ')}) ${source} ON CONFLICT (campaign_id, bucket, stage, part) DO UPDATE SET ${set}`
}

/** Upsert of fact rows: the newest statement of a row replaces the old one. */
export function factUpsert(table: FactTable, source: string): string {
  const cols = FACT_COLUMNS[table].map(([n]) => n)
  const set = cols
    .slice(1)
    .map((n) => `${n} = excluded.${n}`)
    .join(', ')
  return `INSERT INTO ${table} (${cols.join(', ')}) ${source} ON CONFLICT (${cols[0]}) DO UPDATE SET ${set}`
}
