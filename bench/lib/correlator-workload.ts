import type { EventSource, Position, SourceHandlers, SourceRecord } from '../../correlator/source.js'
import { EVENT_INFO, EVENT_TYPES, eventKey } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'
import { DEFAULT_START, generateFunnel } from '../../generator/funnel.js'
import { partitionFor } from '../../kafka/protocol/murmur2.js'

/** Generated events as Kafka would hold them: per topic-partition logs, key `topic:partition`. */
export type Logs = Map<string, SourceRecord[]>

export const PARTITIONS = 4

function push(logs: Logs, topic: string, key: string, value: Buffer, partitions: number): void {
  const k = Buffer.from(key)
  const partition = partitionFor(k, partitions)
  const id = `${topic}:${partition}`
  let log = logs.get(id)
  if (log === undefined) {
    log = []
    logs.set(id, log)
  }
  log.push({ topic, partition, offset: String(log.length), key: k, value })
}

/** A realistic funnel (bids → impressions → clicks → conversions) with duplicates and disorder. */
export function funnelLogs(bids: number, seed: number): Logs {
  const f = generateFunnel({ seed, bids, duplicates: 0.01, outOfOrder: 0.05, late: 0.001, botClicks: 0.05 })
  const logs: Logs = new Map()
  for (const type of EVENT_TYPES) {
    const info = EVENT_INFO[type]
    for (const e of f[type])
      push(logs, info.topic, eventKey(type, e), encodeWire(EVENT_SCHEMAS[type], e), PARTITIONS)
  }
  return logs
}

/**
 * `n` impressions inside one click window, none clicked: every one is an open key of the click
 * join. One bid per partition an hour later moves the bids watermark past them, so they do not
 * also stay open waiting for a bid.
 */
export function openKeyLogs(n: number): Logs {
  const logs: Logs = new Map()
  const bid = EVENT_SCHEMAS.bid
  for (let p = 0, k = 0; p < PARTITIONS; k++) {
    const id = `auc-watermark-${k}`
    if (partitionFor(Buffer.from(id), PARTITIONS) !== p) continue
    const e = {
      event_id: `ev-${id}`,
      event_time: DEFAULT_START + 3_600_000,
      id,
      campaign_id: null,
      imp: [{ id: '1' }],
    }
    push(
      logs,
      EVENT_INFO.bid.topic,
      id,
      encodeWire(bid, bid.type.clone(e, { wrapUnions: false })),
      PARTITIONS,
    )
    p++
  }
  const schema = EVENT_SCHEMAS.impression
  for (let i = 0; i < n; i++) {
    const e = {
      event_id: `ev-imp-${i}`,
      // Two per millisecond: a million keys span 500 s, inside one click window.
      event_time: DEFAULT_START + Math.floor(i / 2),
      ingest_time: 0,
      source: '',
      impression_id: `imp-${i}`,
      auction_id: `auc-${i}`,
      campaign_id: `cmp-${String(i % 24).padStart(3, '0')}`,
      creative_id: null,
      publisher_id: null,
      site_domain: null,
      placement_id: null,
      cost_micros: 1000,
      currency: 'USD',
      device_type: 'MOBILE',
      country: null,
      user_agent: null,
      ip: null,
    }
    push(logs, EVENT_INFO.impression.topic, e.auction_id, encodeWire(schema, e), PARTITIONS)
  }
  return logs
}

export function count(logs: Logs): number {
  let n = 0
  for (const l of logs.values()) n += l.length
  return n
}

/**
 * Delivers the logs round-robin, `perBatch` records of one topic-partition at a time (what a
 * consumer's fetch gives), from `from` (next offsets) on. Honors seek.
 */
export class LogSource implements EventSource {
  readonly fetch = new Map<string, number>()
  committed: Position[] = []
  private stopped = false

  constructor(
    private readonly logs: Logs,
    private readonly perBatch: number,
    private readonly onIdle?: () => Promise<boolean>,
  ) {}

  async partitions(): Promise<number> {
    return PARTITIONS
  }

  async start(h: SourceHandlers): Promise<void> {
    for (const [k, v] of this.committedMap()) this.fetch.set(k, v)
    const keys = [...this.logs.keys()]
    for (;;) {
      let any = false
      for (const k of keys) {
        if (this.stopped) return
        const log = this.logs.get(k)!
        const from = this.fetch.get(k) ?? 0
        if (from >= log.length) continue
        any = true
        this.fetch.set(k, Math.min(log.length, from + this.perBatch))
        await h.onBatch(log.slice(from, from + this.perBatch))
      }
      if (!any && !(this.onIdle && (await this.onIdle()))) return
    }
  }

  private committedMap(): Map<string, number> {
    const m = new Map<string, number>()
    for (const p of this.committed) m.set(`${p.topic}:${p.partition}`, Number(p.offset))
    return m
  }

  async commit(positions: Position[]): Promise<void> {
    const m = this.committedMap()
    for (const p of positions) m.set(`${p.topic}:${p.partition}`, Number(p.offset))
    this.committed = [...m].map(([k, v]) => {
      const i = k.lastIndexOf(':')
      return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)), offset: String(v) }
    })
  }

  async seek(positions: Position[]): Promise<void> {
    for (const p of positions) this.fetch.set(`${p.topic}:${p.partition}`, Number(p.offset))
  }

  async stop(): Promise<void> {
    this.stopped = true
  }
}
