// The correctness reference: adgate's attribution rules as the README states them ("The rules"
// under "Correlator"), written as plain SQL over the raw records, in DuckDB. Tests compare the
// correlator's tables with these, exactly. It imports nothing from correlator/ (only the events'
// Avro wire decoding), so a mistake in the correlator cannot hide in a helper both would share.
import { DuckDBInstance } from '@duckdb/node-api'
import { decodeWire } from '../../events/wire.js'

// Declaration mirrored in correlator/rules.ts: declared here independently, as an oracle of the rules.
/** The README's rules table, as numbers. */
export interface ReferenceRules {
  readonly impressionWindowMs: number
  readonly clickWindowMs: number
  readonly conversionWindowMs: number
  readonly graceMs: number
  readonly minClickDelayMs: number
  readonly botAgents: readonly string[]
}

/** The defaults the README documents (and `ADGATE_BOT_USER_AGENTS`'s default in the configuration table). */
export const DOCUMENTED_RULES: ReferenceRules = {
  impressionWindowMs: 10 * 60_000,
  clickWindowMs: 30 * 60_000,
  conversionWindowMs: 7 * 24 * 3_600_000,
  graceMs: 5 * 60_000,
  minClickDelayMs: 1000,
  botAgents: [
    'bot',
    'crawler',
    'spider',
    'python-requests',
    'curl/',
    'wget/',
    'headlesschrome',
    'phantomjs',
    'go-http-client',
    'java/',
    'okhttp',
  ],
}

/** A record as stored in a topic-partition: topic name without any test prefix. */
export interface RawRecord {
  readonly topic: string
  readonly partition: number
  /** Decimal string, as Kafka clients give it. */
  readonly offset: string
  readonly value: Buffer
}

const EVENT_TOPICS = ['adgate.bids', 'adgate.impressions', 'adgate.clicks', 'adgate.conversions']

export interface Expected {
  impressions: Record<string, unknown>[]
  clicks: Record<string, unknown>[]
  conversions: Record<string, unknown>[]
  late: Record<string, unknown>[]
  minute: Record<string, unknown>[]
  hour: Record<string, unknown>[]
}

const COLUMNS = [
  'topic VARCHAR',
  'part INTEGER',
  'off BIGINT',
  'event_id VARCHAR',
  't BIGINT',
  'id VARCHAR',
  'campaign_id VARCHAR',
  'bid_price_micros BIGINT',
  'impression_id VARCHAR',
  'auction_id VARCHAR',
  'creative_id VARCHAR',
  'publisher_id VARCHAR',
  'site_domain VARCHAR',
  'device_type VARCHAR',
  'country VARCHAR',
  'cost_micros BIGINT',
  'click_id VARCHAR',
  'user_agent VARCHAR',
  'conversion_id VARCHAR',
  'conversion_type VARCHAR',
  'value_micros BIGINT',
]

export async function reference(records: readonly RawRecord[], rules: ReferenceRules): Promise<Expected> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  try {
    await c.run(`CREATE TABLE raw (${COLUMNS.join(', ')})`)
    await c.run('CREATE TABLE bots (needle VARCHAR)')
    for (const b of rules.botAgents) await c.run('INSERT INTO bots VALUES ($1)', [b])
    const a = await c.createAppender('raw')
    for (const r of records) {
      if (!EVENT_TOPICS.includes(r.topic)) continue
      const v = decodeWire(r.value).value as Record<string, unknown>
      a.appendVarchar(r.topic)
      a.appendInteger(r.partition)
      a.appendBigInt(BigInt(r.offset))
      for (const col of COLUMNS.slice(3)) {
        const [name, type] = col.split(' ') as [string, string]
        // A bid's auction id is its OpenRTB request's own id (schemas/bid.v3.avsc).
        const x =
          name === 'id' && v.request
            ? (v.request as { id: string }).id
            : v[name === 't' ? 'event_time' : name]
        if (x === null || x === undefined) a.appendNull()
        else if (type === 'BIGINT') a.appendBigInt(BigInt(x as number))
        else a.appendVarchar(String(x))
      }
      a.endRow()
    }
    a.closeSync()
    const g = rules.graceMs
    const sql = `
      CREATE TABLE marked AS
        SELECT *, t < coalesce(max(t) OVER (PARTITION BY topic, part ORDER BY off
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), -9e18) - ${g} AS is_late
        FROM raw;
      CREATE TABLE kept AS
        SELECT * FROM marked WHERE NOT is_late
        QUALIFY row_number() OVER (PARTITION BY topic, part, event_id ORDER BY off) = 1;
      CREATE VIEW B AS SELECT * FROM kept WHERE topic = 'adgate.bids';
      CREATE VIEW I AS SELECT * FROM kept WHERE topic = 'adgate.impressions';
      CREATE VIEW C AS SELECT * FROM kept WHERE topic = 'adgate.clicks';
      CREATE VIEW V AS SELECT * FROM kept WHERE topic = 'adgate.conversions';
      CREATE TABLE e_impressions AS
        SELECT I.impression_id, I.event_id, I.auction_id, I.campaign_id, I.creative_id, I.publisher_id,
               I.site_domain, I.device_type, I.country, I.t AS impression_time, I.cost_micros,
               B.event_id AS bid_event_id, B.t AS bid_time, B.bid_price_micros, NULL::VARCHAR AS quality_flags
        FROM I LEFT JOIN B ON B.id = I.auction_id AND I.t - B.t BETWEEN 0 AND ${rules.impressionWindowMs};
      CREATE TABLE e_clicks AS
        WITH m AS (
          SELECT C.*, I.t AS imp_t
          FROM C LEFT JOIN I ON I.impression_id = C.impression_id AND C.t - I.t BETWEEN 0 AND ${rules.clickWindowMs}
        ), r AS (
          SELECT *, row_number() OVER (PARTITION BY impression_id, imp_t IS NULL ORDER BY t, event_id) AS rn,
                 coalesce(EXISTS (SELECT 1 FROM bots WHERE contains(lower(m.user_agent), needle)), false) AS bot
          FROM m
        )
        SELECT click_id, event_id, impression_id, campaign_id, t AS click_time, imp_t AS impression_time,
               bot AS is_bot,
               imp_t IS NOT NULL AND rn > 1 AS is_duplicate,
               imp_t IS NULL AS is_no_impression,
               imp_t IS NOT NULL AND t - imp_t < ${rules.minClickDelayMs} AS is_too_soon,
               imp_t IS NOT NULL AND rn = 1 AND NOT bot AND t - imp_t >= ${rules.minClickDelayMs} AS valid,
               NULL::VARCHAR AS quality_flags
        FROM r;
      CREATE TABLE e_conversions AS
        SELECT V.conversion_id, V.event_id, V.click_id, V.campaign_id, V.t AS conversion_time, V.conversion_type,
               V.value_micros, C.t AS click_time, C.t IS NOT NULL AS attributed, NULL::VARCHAR AS quality_flags
        FROM V LEFT JOIN C ON C.click_id = V.click_id AND V.t - C.t BETWEEN 0 AND ${rules.conversionWindowMs};
      CREATE TABLE contributions AS
        SELECT campaign_id, t, 1 AS bids, 0 AS wins, 0 AS impressions, 0 AS spend_micros, 0 AS clicks,
               0 AS clicks_valid, 0 AS clicks_invalid, 0 AS conversions, 0 AS conversion_value_micros,
               1 AS quality_events, 0 AS quality_flagged
          FROM B WHERE campaign_id IS NOT NULL
        UNION ALL
        SELECT campaign_id, t, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM B
          WHERE campaign_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM I WHERE I.auction_id = B.id AND I.t - B.t BETWEEN 0 AND ${rules.impressionWindowMs})
        UNION ALL
        SELECT campaign_id, impression_time, 0, 0, 1, cost_micros, 0, 0, 0, 0, 0, 1, 0 FROM e_impressions
        UNION ALL
        SELECT campaign_id, click_time, 0, 0, 0, 0, 1, valid::INT, (NOT valid)::INT, 0, 0, 1, 0 FROM e_clicks
        UNION ALL
        SELECT campaign_id, conversion_time, 0, 0, 0, 0, 0, 0, 0, attributed::INT,
               CASE WHEN attributed THEN value_micros ELSE 0 END, 1, 0 FROM e_conversions;
    `
    for (const stmt of sql.split(';').filter((s) => s.trim())) await c.run(stmt)
    const agg = (size: number) => `
      SELECT campaign_id, t - (t % ${size}) AS bucket, sum(bids) AS bids, sum(wins) AS wins,
             sum(impressions) AS impressions, sum(spend_micros) AS spend_micros, sum(clicks) AS clicks,
             sum(clicks_valid) AS clicks_valid, sum(clicks_invalid) AS clicks_invalid,
             sum(conversions) AS conversions, sum(conversion_value_micros) AS conversion_value_micros,
             sum(quality_events) AS quality_events, sum(quality_flagged) AS quality_flagged
      FROM contributions GROUP BY ALL ORDER BY bucket, campaign_id`
    const rows = async (q: string) => normalize((await c.runAndReadAll(q)).getRowObjectsJson())
    return {
      impressions: await rows('SELECT * FROM e_impressions ORDER BY impression_id'),
      clicks: await rows('SELECT * FROM e_clicks ORDER BY click_id'),
      conversions: await rows('SELECT * FROM e_conversions ORDER BY conversion_id'),
      late: await rows(
        'SELECT topic, part AS partition, off::VARCHAR AS "offset", event_id, t AS event_time FROM marked WHERE is_late ORDER BY topic, part, off',
      ),
      minute: await rows(agg(60_000)),
      hour: await rows(agg(3_600_000)),
    }
  } finally {
    c.closeSync()
    db.closeSync()
  }
}

/** JSON rows with numbers as numbers (DuckDB gives BIGINT and HUGEINT as strings). */
export function normalize(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((r) => {
    const o: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(r))
      o[k] = typeof v === 'string' && /^-?\d+$/.test(v) && k !== 'offset' ? Number(v) : v
    return o
  })
}
