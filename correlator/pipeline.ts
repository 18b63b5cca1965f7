import { deserialize, serialize } from 'node:v8'
import { partitionFor } from '../kafka/protocol/murmur2.js'
import type { AnomalyDetector, AnomalyState } from './anomaly.js'
import { AuctionJoin, type AuctionState, newAuctionState, OPEN_BID_COLUMNS } from './auction-join.js'
import { ClickJoin, type ClickJoinState, IMPRESSION_ENTRY_COLUMNS, newClickJoinState } from './click-join.js'
import type { ClockState } from './clock.js'
import { type Columns, fromColumns, toColumns } from './columns.js'
import { ConversionJoin, type ConversionJoinState, newConversionJoinState } from './conversion-join.js'
import { decodeForJoin } from './decode.js'
import type {
  BidEvent,
  ClickEvent,
  ConversionEvent,
  ForwardedClick,
  ForwardedImpression,
  ImpressionEvent,
  ProgressMarker,
  RecordRef,
} from './events.js'
import type { BatchOutput } from './output.js'
import type { JoinRules } from './rules.js'
import { type SourceRecord, tpKey } from './source.js'
import { type TopicNames, topicNames } from './topics.js'

/** A record for one of the correlator's own topics, to produce before the batch is committed. */
export interface OutgoingRecord {
  topic: string
  partition: number
  key: Buffer | null
  value: Buffer
}

/** The three join stages of one partition number (Kafka mode assigns them to one instance). */
interface PartitionJoins {
  auction: AuctionJoin
  click: ClickJoin
  conversion: ConversionJoin
  /** Last progress sent downstream, to send markers only when it moved. */
  sentImps?: string
  sentClicks?: string
}

/** v2: the two largest maps (open bids, impressions waiting for clicks) as columns (columns.ts). */
interface PartitionSnapshot {
  v: 2
  auction: Omit<AuctionState, 'bids'> & { bids: Columns }
  click: Omit<ClickJoinState, 'impressions'> & { impressions: Columns }
  conversion: ConversionJoinState
  /** The instance's anomaly detector, in one partition's checkpoint per write. */
  anomaly?: DetectorSnapshot
}

/** v1, written before 2026-12-06: the states as they are. */
interface PartitionSnapshotV1 extends Omit<PartitionSnapshot, 'v' | 'auction' | 'click'> {
  v: 1
  auction: AuctionState
  click: ClickJoinState
}

interface DetectorSnapshot {
  state: AnomalyState
  /** Next offset per input topic-partition (tpKey) when it was taken: what the state has seen. */
  positions: Map<string, bigint>
}

export type RecordMode = 'skip' | 'replay' | 'live'

/**
 * Routes records to the join stages of their partition and carries re-keyed records between the
 * stages: in-process (`local`, one instance owns every partition: the embedded mode and a
 * single correlator) or through the correlator's Kafka topics (several instances).
 *
 * Kafka has no transactions here, so exactly-once is built from idempotence: a stage that
 * restarts may re-send re-keyed records, and the next stage ignores a key it already holds.
 */
export class Pipeline {
  readonly joins = new Map<number, PartitionJoins>()
  outgoing: OutgoingRecord[] = []
  undecodable = 0
  /** Hand every event taken in to storage's raw tables (ADGATE_RAW_TABLES). */
  keepRaw = false
  /** Sees every decoded event once: replayed records only past its snapshot's positions. */
  detector: AnomalyDetector | null = null
  /** Positions the restored detector state reflects; empty: it learns from every replayed record. */
  private detectorSeen = new Map<string, bigint>()
  /** An event reached the detector: no snapshot may replace its state any more. */
  private detectorFed = false
  private out!: BatchOutput
  private wallNow = 0

  constructor(
    readonly rules: JoinRules,
    /** Partitions of every input topic. */
    readonly partitions: number,
    /** true: stages exchange re-keyed records in-process; false: through Kafka. */
    readonly local: boolean,
    readonly names: TopicNames = topicNames(),
  ) {}

  /** Takes ownership of partition `p`, from a snapshot or empty. */
  init(p: number, snapshot: Buffer | null, wallNow: number): void {
    const s = snapshot ? (deserialize(snapshot) as PartitionSnapshot | PartitionSnapshotV1) : null
    // Each write's first checkpoint carries the detector: the newest loaded before any event wins.
    // (Every partition's checkpoint is from that write or older, so its replay covers the gap.)
    const d = this.detector
    if (
      s?.anomaly !== undefined &&
      d !== null &&
      !this.detectorFed &&
      s.anomaly.state.observed > d.observedCount
    ) {
      d.restore(s.anomaly.state)
      this.detectorSeen = s.anomaly.positions
    }
    const auction =
      s === null
        ? newAuctionState()
        : s.v === 1
          ? s.auction
          : { ...s.auction, bids: fromColumns(s.auction.bids, OPEN_BID_COLUMNS) }
    const click =
      s === null
        ? newClickJoinState()
        : s.v === 1
          ? s.click
          : { ...s.click, impressions: fromColumns(s.click.impressions, IMPRESSION_ENTRY_COLUMNS) }
    const conversion = s?.conversion ?? newConversionJoinState()
    // Idleness is wall-clock and not part of results: every input starts active again.
    for (const c of [auction.bidsClock, auction.impsClock, click.clicksClock, conversion.conversionsClock]) {
      c.lastSeenWall = wallNow
      c.idle = false
    }
    this.joins.set(p, {
      auction: new AuctionJoin(p, this.rules, auction, this.forwardImpression),
      click: new ClickJoin(p, this.rules, click, this.partitions, this.forwardClick),
      conversion: new ConversionJoin(p, this.rules, conversion, this.partitions),
    })
  }

  drop(p: number): void {
    this.joins.delete(p)
  }

  /** Partition `p`'s state; with `positions` (every input's next offset), the detector's too. */
  snapshot(p: number, positions?: Map<string, bigint>): Buffer {
    const j = this.joins.get(p)
    if (j === undefined) throw new Error(`partition ${p} is not owned`)
    const auction = j.auction.state
    const click = j.click.state
    const s: PartitionSnapshot = {
      v: 2,
      auction: { ...auction, bids: toColumns(auction.bids, OPEN_BID_COLUMNS) },
      click: { ...click, impressions: toColumns(click.impressions, IMPRESSION_ENTRY_COLUMNS) },
      conversion: j.conversion.state,
      ...(positions !== undefined && this.detector !== null
        ? { anomaly: { state: this.detector.snapshot(), positions } }
        : {}),
    }
    return serialize(s)
  }

  /** Starts a batch: everything produced goes to `out` (and `outgoing`, until sent). */
  begin(out: BatchOutput, wallNow: number): void {
    this.out = out
    this.wallNow = wallNow
  }

  /** One record; `mode` says whether its effects are new (`live`) or already stored (`replay`). */
  process(r: SourceRecord, mode: RecordMode): void {
    if (mode === 'skip') return
    const j = this.joins.get(r.partition)
    if (j === undefined) throw new Error(`record for unowned partition ${r.topic}:${r.partition}`)
    const out = this.out
    out.discard = mode === 'replay'
    if (!out.discard) out.events++
    try {
      const n = this.names
      if (r.topic === n.rekeyedImpressions || r.topic === n.rekeyedClicks) {
        const v = JSON.parse(r.value.toString()) as Record<string, unknown>
        if (v.m !== undefined) {
          const marker = toMarker(v)
          if (r.topic === n.rekeyedImpressions) j.click.onMarker(marker)
          else j.conversion.onMarker(marker)
        } else if (r.topic === n.rekeyedImpressions)
          j.click.onImpression(v as unknown as ForwardedImpression, out)
        else j.conversion.onClick(v as unknown as ForwardedClick, out)
        return
      }
      const type =
        r.topic === n.bid
          ? 'bid'
          : r.topic === n.impression
            ? 'impression'
            : r.topic === n.click
              ? 'click'
              : r.topic === n.conversion
                ? 'conversion'
                : undefined
      if (type === undefined) throw new Error(`unexpected topic ${r.topic}`)
      let value: unknown
      try {
        value = decodeForJoin(type, r.value)
      } catch {
        // The gateway writes only valid records; anything else is counted (metric), not fatal.
        if (!out.discard) this.undecodable++
        return
      }
      if (r.flags) (value as { quality_flags?: string }).quality_flags = r.flags
      if (this.keepRaw)
        out.rawEvent({
          type,
          partition: r.partition,
          offset: r.offset,
          time: (value as { event_time: number }).event_time,
          value: r.value,
          flags: r.flags ?? null,
        })
      if (
        this.detector !== null &&
        (mode === 'live' || BigInt(r.offset) >= (this.detectorSeen.get(tpKey(r.topic, r.partition)) ?? 0n))
      ) {
        this.detectorFed = true
        this.detector.observe(type, value as BidEvent)
      }
      const ref: RecordRef = r
      if (type === 'bid') j.auction.onBid(value as BidEvent, ref, out, this.wallNow)
      else if (type === 'impression') j.auction.onImpression(value as ImpressionEvent, ref, out, this.wallNow)
      else if (type === 'click') j.click.onClick(value as ClickEvent, ref, out, this.wallNow)
      else j.conversion.onConversion(value as ConversionEvent, ref, out, this.wallNow)
    } finally {
      out.discard = false
    }
  }

  /** Ends a batch: progress markers downstream, then state no future event can join is dropped. */
  end(): void {
    if (this.detector !== null) for (const a of this.detector.advance()) this.out.anomalies.push(a)
    for (const [p, j] of this.joins) {
      const imps = j.auction.progress()
      const impsKey = `${imps.watermark}/${imps.idle}`
      if (impsKey !== j.sentImps) {
        j.sentImps = impsKey
        this.broadcast(this.names.rekeyedImpressions, { from: p, ...imps })
      }
      const clicks = j.click.progress()
      const clicksKey = `${clicks.watermark}/${clicks.idle}`
      if (clicksKey !== j.sentClicks) {
        j.sentClicks = clicksKey
        this.broadcast(this.names.rekeyedClicks, { from: p, ...clicks })
      }
    }
    for (const j of this.joins.values()) {
      j.auction.expire(this.out)
      j.click.expire(this.out)
      j.conversion.expire(this.out)
    }
  }

  /**
   * Marks inputs idle that had no record for `idleMs` of wall time and are read to their end
   * (`caughtUp`: tpKeys with nothing left to read). Quiet time alone is not enough: after a stall of
   * the whole pipeline every input looks quiet while records still wait in the source (see clock.ts).
   */
  tick(wallNow: number, idleMs: number, caughtUp: ReadonlySet<string>): void {
    const n = this.names
    for (const [p, j] of this.joins) {
      const inputs: [ClockState, string][] = [
        [j.auction.state.bidsClock, n.bid],
        [j.auction.state.impsClock, n.impression],
        [j.click.state.clicksClock, n.click],
        [j.conversion.state.conversionsClock, n.conversion],
      ]
      for (const [c, topic] of inputs)
        if (!c.idle && wallNow - c.lastSeenWall >= idleMs && caughtUp.has(tpKey(topic, p))) c.idle = true
    }
  }

  openKeys(): number {
    let n = 0
    for (const j of this.joins.values())
      n += j.auction.openKeys() + j.click.openKeys() + j.conversion.openKeys()
    return n
  }

  private readonly forwardImpression = (imp: ForwardedImpression, out: BatchOutput): void => {
    const key = Buffer.from(imp.impression_id)
    const p = partitionFor(key, this.partitions)
    if (this.local) this.ownedForLocal(p).click.onImpression(imp, out)
    else if (!out.discard)
      this.outgoing.push({ topic: this.names.rekeyedImpressions, partition: p, key, value: json(imp) })
  }

  private readonly forwardClick = (click: ForwardedClick, out: BatchOutput): void => {
    const key = Buffer.from(click.click_id)
    const p = partitionFor(key, this.partitions)
    if (this.local) this.ownedForLocal(p).conversion.onClick(click, out)
    else if (!out.discard)
      this.outgoing.push({ topic: this.names.rekeyedClicks, partition: p, key, value: json(click) })
  }

  private broadcast(topic: string, m: ProgressMarker): void {
    const value = { m: m.from, w: Number.isFinite(m.watermark) ? m.watermark : null, i: m.idle }
    for (let q = 0; q < this.partitions; q++) {
      if (this.local) {
        const j = this.ownedForLocal(q)
        if (topic === this.names.rekeyedImpressions) j.click.onMarker(m)
        else j.conversion.onMarker(m)
      } else this.outgoing.push({ topic, partition: q, key: null, value: json(value) })
    }
  }

  private ownedForLocal(p: number): PartitionJoins {
    const j = this.joins.get(p)
    if (j === undefined) throw new Error(`local re-keying needs every partition; ${p} is not owned`)
    return j
  }
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v))
}

function toMarker(v: Record<string, unknown>): ProgressMarker {
  return {
    from: v.m as number,
    watermark: typeof v.w === 'number' ? v.w : Number.NEGATIVE_INFINITY,
    idle: v.i === true,
  }
}
