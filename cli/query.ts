import type { Config } from '../config/config.js'
import { parseStatsQuery } from '../correlator/http.js'
import type { StatsQuery, StatsRow } from '../correlator/storage.js'
import { openStorage, storageTarget } from '../storage/open.js'
import { UsageError } from './gen.js'

export const QUERY_HELP = `adgate query — campaign performance from storage

Usage: adgate query [--json] [--campaign ID] [--from T] [--to T] [--granularity minute|hour]

  --json          a JSON array of rows (default: a table)
  --campaign ID   one campaign (default: all)
  --from, --to    bucket range, epoch ms or ISO-8601; --to is exclusive
  --granularity   minute or hour (default hour)

Rows: campaign_id, bucket, bids, wins, impressions, clicks, clicks_valid, clicks_invalid,
conversions, conversion_value_micros, spend_micros, ctr (valid clicks / impressions),
cvr (conversions / valid clicks), win_rate (wins / bids).

Reads ADGATE_STORAGE. A DuckDB file held by a running correlator is asked through that
correlator's HTTP API (ADGATE_CORRELATOR_PORT) instead.
`

export async function query(argv: string[], config: Config): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write(QUERY_HELP)
    return 0
  }
  const params = new URLSearchParams()
  let json = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--json') json = true
    else if (['--campaign', '--from', '--to', '--granularity'].includes(a)) {
      const v = argv[++i]
      if (v === undefined) throw new UsageError(`${a} needs a value`)
      params.set(a.slice(2), v)
    } else throw new UsageError(`unknown option ${a} (adgate query --help)`)
  }
  let q: StatsQuery
  try {
    q = parseStatsQuery(params)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const rows = await fetchRows(q, config, params)
  if (json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`)
  else process.stdout.write(table(rows))
  return 0
}

async function fetchRows(q: StatsQuery, config: Config, params: URLSearchParams): Promise<StatsRow[]> {
  const target = storageTarget(config.storage, config.dataDir)
  try {
    const storage = await openStorage(target, {
      readOnly: true,
      memoryLimit: config.duckdbMemoryLimit,
      threads: config.duckdbThreads,
    })
    try {
      return await storage.stats(q)
    } finally {
      await storage.close()
    }
  } catch (err) {
    // DuckDB lets one process hold a file for writing: ask the correlator that holds it.
    if (target.kind === 'postgres' || !/lock/i.test((err as Error).message)) throw err
    const res = await fetch(`http://127.0.0.1:${config.correlatorPort}/v1/stats?${params}`).catch(() => {
      throw new UsageError(
        `${target.duckdbPath} is locked by another process and no correlator answers on port ${config.correlatorPort}`,
      )
    })
    if (!res.ok) throw new UsageError(`correlator answered ${res.status}: ${await res.text()}`)
    return (await res.json()) as StatsRow[]
  }
}

function table(rows: StatsRow[]): string {
  // Declaration mirrored in test/correlator/cli.test.ts: the test lists the columns independently, as an oracle.
  const cols = [
    'campaign_id',
    'bucket',
    'bids',
    'wins',
    'impressions',
    'clicks',
    'conversions',
    'spend_micros',
    'ctr',
    'cvr',
    'win_rate',
  ] as const
  const cell = (v: unknown) =>
    typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v ?? '')
  const data = rows.map((r) => cols.map((c) => cell(r[c])))
  const widths = cols.map((c, i) => Math.max(c.length, ...data.map((d) => d[i]!.length)))
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  return `${[line(cols), ...data.map(line)].join('\n')}\n`
}
