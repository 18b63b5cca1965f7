import { beforeDeadline } from '../kafka/cluster.js'
import { AnomalyDetector } from './anomaly.js'
import type { AnomalyOptions } from './anomaly-options.js'
import { BatchOutput, type JoinCounts } from './output.js'
import type { OutgoingRecord } from './pipeline.js'
import { Pipeline, type RecordMode } from './pipeline.js'
import type { JoinRules } from './rules.js'
import type { EventSource, OffsetGap, Position, SourceRecord } from './source.js'
import { tpKey } from './source.js'
import { type Checkpoint, StaleOwnerError, type Storage } from './storage.js'
import { inputTopics, type TopicNames } from './topics.js'

/** Longest wait for the source's partition ends in an idle check (none then: nothing turns idle). */
const ENDS_WAIT_MS = 5000

/** Sends re-keyed records to the correlator's own topics and resolves once they are durable. */
export interface RekeyProducer {
  send(records: OutgoingRecord[]): Promise<void>
}

export interface CorrelatorOptions {
  rules: JoinRules
  storage: Storage
  source: EventSource
  /** Present: re-key through Kafka (several instances). Absent: in-process (one instance owns all). */
  producer?: RekeyProducer
  /** How often each partition's join state is checkpointed with its positions. */
  checkpointMs: number
  /** An input read to its end and quiet for this long stops holding back state expiry (see clock.ts). */
  idleMs: number
  /** Per batch, for metrics. */
  onBatch?: (stats: BatchStats) => void
  onWarn?: (msg: string, err?: Error) => void
  /**
   * Records deleted by retention before they were read: `records` of them were never counted,
   * `stateOnly` were counted before a restart but their join state could not be rebuilt.
   */
  onGap?: (gap: OffsetGap & { records: number; stateOnly: number }) => void
  now?: () => number
  /**
   * Group commit: batches are joined as they come, but written (and their positions committed)
   * once this many records are pending or the oldest pending one has waited `lingerMs`.
   * Defaults: every batch is written at once.
   */
  writeEveryRecords?: number
  lingerMs?: number
  /** Topic names (a prefix isolates test runs); default adgate's. */
  names?: TopicNames
  /** Write every event taken in to the raw tables too (storage/raw-tables.ts); default off. */
  rawEvents?: boolean
  /** Anomaly detection (correlator/anomaly.ts) with these options; absent: off. */
  anomalies?: Partial<AnomalyOptions>
}

export interface BatchStats {
  records: number
  events: number
  late: number
  duplicates: number
  undecodable: number
  writeMs: number
  openKeys: number
  /** Wall ms from the oldest record's append to the commit of its effects; NaN when unknown. */
  lagMs: number
  checkpoints: number
  joins: JoinCounts
  /** Metric of each anomaly written by the batch. */
  anomalies: string[]
}

/** How far this instance is behind on one input partition, for the lag metrics. */
export interface PartitionLag {
  topic: string
  partition: number
  /** Records appended and not yet read. */
  records: number
  /** 0 when caught up; else how long ago the last record read was appended (or the partition taken). */
  seconds: number
}

interface TpState {
  /** Next offset this instance will process. */
  read: bigint
  /** Next offset committed in storage (null: nothing stored yet). */
  stored: bigint | null
  /** Append time of the last record read, or when this instance took the partition. */
  readAt: number
}

/**
 * The loop: records → joins → one atomic storage write (facts, counters, positions, state
 * checkpoints) → positions handed back to the source. Offsets before a partition's checkpoint are
 * skipped; offsets between its checkpoint and its stored position are replayed into state only
 * (their effects are stored already); later ones are new. So a restart, a replay from offset 0
 * or a takeover by another instance changes nothing that was written.
 */
export class Correlator {
  readonly pipeline: Pipeline
  private readonly tps = new Map<string, TpState>()
  private readonly lastCheckpoint = new Map<number, number>()
  /** Positions of each partition's last checkpoint (checkpointKey), to skip unchanged ones. */
  private readonly checkpointed = new Map<number, string>()
  /** Topic-partitions whose records up to their stored position are being re-read into state. */
  private readonly replaying = new Set<string>()
  /** New records held back while their gate (partition, or everything when local) replays. */
  private readonly held = new Map<number, SourceRecord[]>()
  private readonly topics: string[]
  private idleTimer: NodeJS.Timeout | undefined
  private checkingIdle = false
  private chain: Promise<void> = Promise.resolve()
  private flushTimer: NodeJS.Timeout | undefined
  /** What processed batches produced and is not written yet. */
  private pending: BatchOutput | null = null
  private dead = false
  private pendingRecords = 0
  private pendingSince = 0
  private pendingOldest = Number.POSITIVE_INFINITY

  constructor(
    private readonly o: CorrelatorOptions,
    partitions: number,
  ) {
    this.pipeline = new Pipeline(o.rules, partitions, o.producer === undefined, o.names)
    if (o.anomalies !== undefined) this.pipeline.detector = new AnomalyDetector(o.anomalies)
    this.pipeline.keepRaw = o.rawEvents === true
    this.topics = inputTopics(o.producer !== undefined, this.pipeline.names)
  }

  private now(): number {
    return this.o.now ? this.o.now() : Date.now()
  }

  async start(): Promise<void> {
    if (this.pipeline.local) for (let p = 0; p < this.pipeline.partitions; p++) await this.initPartition(p)
    this.idleTimer = setInterval(
      () => {
        if (this.checkingIdle) return // one check at a time: a slow broker must not pile them up
        this.checkingIdle = true
        this.serialize(() => this.markIdle())
          .catch((err: Error) =>
            this.o.onWarn?.('correlator: partition ends unknown; no input turns idle', err),
          )
          .finally(() => {
            this.checkingIdle = false
          })
      },
      Math.max(100, Math.min(this.o.idleMs, 5000)),
    )
    this.idleTimer.unref()
    // Writes what lingered, and checkpoints partitions whose positions moved without a write
    // (records re-read or skipped), so the source's committed positions catch up when idle.
    const linger = this.o.lingerMs ?? 0
    this.flushTimer = setInterval(
      () => {
        // A failed write keeps its output pending: the next tick tries again.
        this.serialize(async () => {
          if (this.pending !== null && this.now() - this.pendingSince >= linger) await this.flush()
          else if (this.pending === null && this.checkpointsDue(this.now()).length > 0) await this.flush(true)
        }).catch((err: Error) => this.o.onWarn?.('correlator: writing failed; trying again', err))
      },
      Math.max(
        50,
        Math.min(linger > 0 ? linger : 1000, this.o.checkpointMs > 0 ? this.o.checkpointMs : 1000),
      ),
    )
    this.flushTimer.unref()
    await this.o.source.start({
      onBatch: (records) => this.serialize(() => this.onBatch(records)),
      onRevoke: (parts) => this.serialize(async () => this.revoke(parts.map((p) => p.partition))),
      onGap: (gap) => this.serialize(() => this.skipGap(gap)),
    })
    // A finite source (a file, a test log) has ended: write what is pending.
    await this.serialize(() => this.flush())
  }

  async stop(): Promise<void> {
    clearInterval(this.idleTimer)
    clearInterval(this.flushTimer)
    await this.o.source.stop()
    // The last write commits its positions through the source, so it is closed only after it.
    try {
      await this.serialize(() => this.flush())
    } finally {
      await this.o.source.close?.()
    }
  }

  /** Stops as kill -9 would, for tests: timers cleared, pending output dropped, nothing written. */
  kill(): void {
    clearInterval(this.idleTimer)
    clearInterval(this.flushTimer)
    this.pending = null
    this.dead = true
  }

  /** Batches and timer ticks run one at a time. */
  private serialize(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(() => (this.dead ? undefined : fn()))
    this.chain = next.catch(() => {})
    return next
  }

  private async revoke(partitions: number[]): Promise<void> {
    if (this.pipeline.local) return
    // What the revoked partitions produced is written while they are still ours (or fenced).
    await this.flush()
    for (const p of new Set(partitions)) this.dropPartition(p)
  }

  private dropPartition(p: number): void {
    this.pipeline.drop(p)
    this.lastCheckpoint.delete(p)
    this.checkpointed.delete(p)
    for (const t of this.topics) {
      this.tps.delete(tpKey(t, p))
      this.replaying.delete(tpKey(t, p))
    }
    this.held.delete(this.gate(p))
  }

  /**
   * The source reads on after records it can no longer read: this partition's next offset moves
   * past them (else the re-read from a checkpoint below the gap would seek back into it forever),
   * and re-reading into state ends there if the gap reaches the stored position. Records past the
   * stored position are lost to the counts; those before it were counted, only their join state
   * (partners waiting in a window) is gone.
   */
  private async skipGap(gap: OffsetGap): Promise<void> {
    if (!this.pipeline.joins.has(gap.partition)) await this.initPartition(gap.partition)
    const k = tpKey(gap.topic, gap.partition)
    const tp = this.tps.get(k)
    const to = BigInt(gap.to)
    if (tp === undefined || to <= tp.read) return
    const from = max(BigInt(gap.from), tp.read)
    const stored = tp.stored ?? from
    tp.read = to
    if (tp.stored !== null && tp.read >= tp.stored) this.replaying.delete(k)
    this.o.onGap?.({
      ...gap,
      records: Number(max(0n, to - max(from, stored))),
      stateOnly: stored > from ? Number((stored < to ? stored : to) - from) : 0,
    })
  }

  /**
   * New records wait until every record whose effects are already stored has been re-read into
   * state: a replayed record may restate a row that a new one wrote (a replayed bid joining a new
   * impression), and replayed effects are not written. Partitions are independent when re-keying
   * goes through Kafka (the re-keyed topics have positions of their own); in-process, stages of
   * one partition feed stages of all the others, so everything waits together.
   */
  private gate(p: number): number {
    return this.pipeline.local ? -1 : p
  }

  private gateOpen(gate: number): boolean {
    if (this.replaying.size === 0) return true
    if (gate === -1) return false
    for (const t of this.topics) if (this.replaying.has(tpKey(t, gate))) return false
    return true
  }

  private async initPartition(p: number): Promise<void> {
    const load = await this.o.storage.load(p, this.topics)
    const snap = new Map<string, bigint>()
    for (const pos of load.checkpoint?.positions ?? [])
      snap.set(tpKey(pos.topic, pos.partition), BigInt(pos.offset))
    for (const t of this.topics) {
      const k = tpKey(t, p)
      const stored = load.positions.get(k)
      const tp = {
        read: snap.get(k) ?? 0n,
        stored: stored === undefined ? null : BigInt(stored),
        readAt: this.now(),
      }
      this.tps.set(k, tp)
      if (tp.stored !== null && tp.read < tp.stored) this.replaying.add(k)
    }
    this.pipeline.init(p, load.checkpoint?.state ?? null, this.now())
    // No checkpoint yet: write one with the first batch, so positions never exist without state.
    if (load.checkpoint === null) this.lastCheckpoint.set(p, Number.NEGATIVE_INFINITY)
    else {
      this.lastCheckpoint.set(p, this.now())
      this.checkpointed.set(p, this.checkpointKey(p))
    }
  }

  private async onBatch(records: SourceRecord[]): Promise<void> {
    const wallNow = this.now()
    if (this.pending === null) {
      this.pending = new BatchOutput()
      this.pendingSince = wallNow
      this.pendingRecords = 0
      this.pendingOldest = Number.POSITIVE_INFINITY
    }
    const out = this.pending
    const pipeline = this.pipeline
    pipeline.begin(out, wallNow)
    const seeks = new Map<string, Position>()
    let oldest = this.pendingOldest
    const handle = (r: SourceRecord): void => {
      const k = tpKey(r.topic, r.partition)
      const tp = this.tps.get(k)
      if (tp === undefined) return // not an input topic of this instance
      if (seeks.has(k)) return
      const off = BigInt(r.offset)
      let mode: RecordMode
      if (off < tp.read) mode = 'skip'
      else {
        if (off > tp.read && tp.stored !== null && tp.read < tp.stored) {
          // The source is ahead of the checkpoint the state was rebuilt from: re-read from there.
          seeks.set(k, { topic: r.topic, partition: r.partition, offset: tp.read.toString() })
          return
        }
        mode = tp.stored !== null && off < tp.stored ? 'replay' : 'live'
        if (mode === 'live') {
          const gate = this.gate(r.partition)
          const held = this.held.get(gate)
          if (held !== undefined || !this.gateOpen(gate)) {
            if (held === undefined) this.held.set(gate, [r])
            else held.push(r)
            return
          }
        }
        tp.read = off + 1n
        if (r.timestamp !== undefined) tp.readAt = r.timestamp
        if (tp.stored !== null && tp.read >= tp.stored) this.replaying.delete(k)
      }
      if (mode === 'live' && r.timestamp !== undefined && r.timestamp < oldest) oldest = r.timestamp
      pipeline.process(r, mode)
    }
    for (const r of records) {
      if (!pipeline.joins.has(r.partition)) await this.initPartition(r.partition)
      handle(r)
    }
    // Gates that opened: their held records, in arrival order.
    for (const [gate, held] of this.held) {
      if (!this.gateOpen(gate)) continue
      this.held.delete(gate)
      for (const r of held) handle(r)
    }
    pipeline.end()
    this.pendingRecords += records.length
    this.pendingOldest = oldest
    if (seeks.size > 0) await this.o.source.seek([...seeks.values()])
    if (
      this.pendingRecords >= (this.o.writeEveryRecords ?? 0) ||
      wallNow - this.pendingSince >= (this.o.lingerMs ?? 0)
    )
      await this.flush()
  }

  /**
   * Partitions whose checkpoint is due: interval passed and positions moved since the last one.
   * In-process re-keying makes one partition's state hold what the others forwarded to it
   * (impressions, clicks, progress markers), which its own positions do not cover: a checkpoint
   * of the sender past an impression, with the receiver's older one, would lose the impression on
   * a restart. So then every partition is checkpointed in the same write, or none is.
   */
  private checkpointsDue(wallNow: number): number[] {
    const due: number[] = []
    for (const [p, last] of this.lastCheckpoint) {
      if (wallNow - last < this.o.checkpointMs) continue
      if (this.checkpointKey(p) === this.checkpointed.get(p)) continue
      due.push(p)
    }
    return this.pipeline.local && due.length > 0 ? [...this.lastCheckpoint.keys()] : due
  }

  private checkpointKey(p: number): string {
    return this.topics.map((t) => this.tps.get(tpKey(t, p))!.read).join(',')
  }

  /** One atomic write of everything pending, then the positions a restart needs go to the source. */
  private async flush(checkpointOnly = false): Promise<void> {
    const pipeline = this.pipeline
    const wallNow = this.now()
    const records = this.pendingRecords
    const oldest = this.pendingOldest
    // Output stays pending until it is written: the positions read past it are not stored, and a
    // batch handed over again after a failure is skipped as already read, so dropping it would leave a gap.
    const out = this.pending ?? (checkpointOnly ? new BatchOutput() : null)
    if (out === null) return
    if (pipeline.outgoing.length > 0) {
      await this.o.producer!.send(pipeline.outgoing)
      pipeline.outgoing = []
    }

    const positions: Position[] = []
    const expected = new Map<string, string | null>()
    for (const [k, tp] of this.tps) {
      if (tp.stored !== null && tp.read <= tp.stored) continue
      if (tp.stored === null && tp.read === 0n) continue
      const [topic, partition] = splitTp(k)
      positions.push({ topic, partition, offset: tp.read.toString() })
      expected.set(k, tp.stored === null ? null : tp.stored.toString())
    }
    const checkpoints: Checkpoint[] = []
    // The anomaly detector rides in the first checkpoint of the write, with every input's position.
    let detectorAt =
      pipeline.detector === null ? undefined : new Map([...this.tps].map(([k, tp]) => [k, tp.read]))
    for (const p of this.checkpointsDue(wallNow)) {
      // A checkpoint is fenced like positions: only the owner of every input of `p` may write it.
      for (const t of this.topics) {
        const k = tpKey(t, p)
        const stored = this.tps.get(k)!.stored
        if (!expected.has(k)) expected.set(k, stored === null ? null : stored.toString())
      }
      checkpoints.push({
        partition: p,
        state: pipeline.snapshot(p, detectorAt),
        positions: this.topics.map((t) => ({
          topic: t,
          partition: p,
          offset: this.tps.get(tpKey(t, p))!.read.toString(),
        })),
      })
      detectorAt = undefined
    }
    const t0 = performance.now()
    const write = positions.length > 0 || checkpoints.length > 0 || !out.empty
    if (write) {
      try {
        await this.o.storage.write({ output: out, positions, expected, checkpoints })
      } catch (err) {
        if (!(err instanceof StaleOwnerError)) throw err
        // Another instance took a partition over and wrote past us: rebuild every partition
        // from storage and re-read from its checkpoint.
        this.o.onWarn?.('correlator: partition taken over, reloading from the checkpoint', err)
        this.pending = null
        this.pendingRecords = 0
        await this.reloadAll()
        return
      }
    }
    this.pending = null
    this.pendingRecords = 0
    if (write) {
      for (const p of positions) this.tps.get(tpKey(p.topic, p.partition))!.stored = BigInt(p.offset)
      for (const c of checkpoints) {
        this.lastCheckpoint.set(c.partition, wallNow)
        this.checkpointed.set(c.partition, this.checkpointKey(c.partition))
      }
      if (checkpoints.length > 0) await this.o.source.commit(checkpoints.flatMap((c) => c.positions))
    }
    this.o.onBatch?.({
      records,
      events: out.events,
      late: out.lateCount,
      duplicates: out.duplicates,
      undecodable: pipeline.undecodable,
      writeMs: performance.now() - t0,
      openKeys: pipeline.openKeys(),
      lagMs: Number.isFinite(oldest) ? this.now() - oldest : Number.NaN,
      checkpoints: checkpoints.length,
      joins: out.joins,
      anomalies: out.anomalies.map((a) => a.metric),
    })
    pipeline.undecodable = 0
  }

  /**
   * Inputs quiet for the idle timeout and read to their end turn idle (clock.ts). The ends are
   * asked for here, between batches, not before: after a stall of the whole pipeline (a slow write,
   * a starved process) records appended meanwhile keep their partitions active. Records held back
   * behind a replay are not read yet, so their partitions are not caught up either.
   */
  private async markIdle(): Promise<void> {
    if (this.o.source.ends === undefined) return // cannot tell caught up from stalled
    const ends = await beforeDeadline(this.o.source.ends(), Date.now() + ENDS_WAIT_MS, 'partition ends')
    const endOf = new Map(ends.map((e) => [tpKey(e.topic, e.partition), e.end]))
    const caughtUp = new Set<string>()
    for (const [k, tp] of this.tps) if (tp.read >= (endOf.get(k) ?? 0n)) caughtUp.add(k)
    this.pipeline.tick(this.now(), this.o.idleMs, caughtUp)
  }

  /** Lag of every input partition this instance owns, against the source's partition ends. */
  async lag(): Promise<PartitionLag[]> {
    const ends = (await this.o.source.ends?.()) ?? []
    const now = this.now()
    const lags: PartitionLag[] = []
    for (const e of ends) {
      const tp = this.tps.get(tpKey(e.topic, e.partition))
      if (tp === undefined) continue // another instance's
      const records = e.end > tp.read ? Number(e.end - tp.read) : 0
      const seconds = records === 0 ? 0 : Math.max(0, now - tp.readAt) / 1000
      lags.push({ topic: e.topic, partition: e.partition, records, seconds })
    }
    return lags
  }

  private async reloadAll(): Promise<void> {
    const owned = [...this.pipeline.joins.keys()]
    for (const p of owned) this.dropPartition(p)
    this.held.clear()
    const seeks: Position[] = []
    for (const p of owned) {
      await this.initPartition(p)
      for (const t of this.topics)
        seeks.push({ topic: t, partition: p, offset: this.tps.get(tpKey(t, p))!.read.toString() })
    }
    await this.o.source.seek(seeks)
  }
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b
}

function splitTp(k: string): [string, number] {
  const i = k.lastIndexOf(':')
  return [k.slice(0, i), Number(k.slice(i + 1))]
}
