/**
 * What the correlator reads from: Kafka (kafka-source.ts) or, in the embedded single-machine mode,
 * the local spool. The correlator owns its positions: it stores them with the data it writes and
 * hands the source the positions a restart must read from (`commit`) only after that write.
 */
export interface SourceRecord {
  topic: string
  partition: number
  /** Kafka offset as a decimal string; the spool uses the same. */
  offset: string
  key: Buffer | null
  /** Confluent wire format for adgate's event topics; JSON for the correlator's own topics. */
  value: Buffer
  /** When the record was appended (Kafka timestamp, ms); for the lag metric only. */
  timestamp?: number
  /** The adgate.quality_flags header: data-quality flag rules the event failed (quality/rules.ts). */
  flags?: string | null
}

export interface Position {
  topic: string
  partition: number
  /** The next offset to read. */
  offset: string
}

/** Where a partition ends: the offset the next record appended to it will get. */
export interface PartitionEnd {
  topic: string
  partition: number
  end: bigint
}

/** Records `from`..`to`-1 of a partition were deleted (Kafka retention) before this instance read them. */
export interface OffsetGap {
  topic: string
  partition: number
  from: string
  to: string
}

export interface SourceHandlers {
  /** One batch of records, any mix of topics and partitions, in offset order per partition. */
  onBatch(records: SourceRecord[]): Promise<void>
  /** Partitions taken away (rebalance): drop their state, another instance now owns them. */
  onRevoke?(partitions: { topic: string; partition: number }[]): Promise<void>
  /** Reading goes on after a gap: called before the first record after it is handed over. */
  onGap?(gap: OffsetGap): Promise<void>
}

export interface EventSource {
  /** Partitions per topic, the same for every topic the correlator reads. */
  partitions(): Promise<number>
  start(handlers: SourceHandlers): Promise<void>
  /** Where a restart resumes: offsets the correlator has made durable (state included). */
  commit(positions: Position[]): Promise<void>
  /** Re-read from these offsets (after a takeover was detected, state is rebuilt from a checkpoint). */
  seek(positions: Position[]): Promise<void>
  /** Hands over no more batches; `commit` still works (the correlator's last write commits after it). */
  stop(): Promise<void>
  /** Releases the source's connections, after the last commit. */
  close?(): Promise<void>
  /**
   * Every input partition's end as it stands now (a partition not listed has none: end 0), for
   * the lag metrics and for idleness: only a partition read to its end can turn idle. None: no lag
   * metrics, and no input ever turns idle.
   */
  ends?(): Promise<PartitionEnd[]>
}

export function tpKey(topic: string, partition: number): string {
  return `${topic}:${partition}`
}
