import { produceV9, ResponseError, Writer } from '@platformatic/kafka'

/**
 * Produce v9 carrying record batches that are already encoded (by the decode workers) — the one
 * request @platformatic/kafka cannot write for us, since its own writer encodes records itself.
 * The response is read by the library's parser.
 *
 *   Produce Request (Version: 9) => transactional_id acks timeout_ms [topic_data] TAG_BUFFER
 *     transactional_id => COMPACT_NULLABLE_STRING
 *     topic_data => name [partition_data] TAG_BUFFER
 *       name => COMPACT_STRING
 *       partition_data => index records TAG_BUFFER
 *         records => COMPACT_RECORDS (one RecordBatch v2)
 */
export const PRODUCE_API = { key: 0, version: 9 } as const
export const ACKS_ALL = -1

export interface PartitionRecords {
  readonly topic: string
  readonly partition: number
  /** Exactly one record batch (brokers refuse more per partition since Produce v3). */
  readonly batch: Buffer
}

/**
 * The timeout_ms a Produce asks of the broker, given the time left before adgate gives up on the
 * request (and closes its connection, see Cluster.request): that time less a tenth (at most 1 s)
 * for the answer to travel back. A produce held by the broker (acks=all waiting for replicas) is
 * then answered REQUEST_TIMED_OUT, which is retried and keeps the connection, before the local
 * deadline would close it.
 */
export function brokerTimeoutMs(timeLeftMs: number): number {
  return Math.max(1, Math.floor(timeLeftMs - Math.min(1000, timeLeftMs / 10)))
}

export function writeProduceRequest(timeoutMs: number, data: readonly PartitionRecords[]): Writer {
  const byTopic = new Map<string, PartitionRecords[]>()
  for (const d of data) {
    const list = byTopic.get(d.topic)
    if (list) list.push(d)
    else byTopic.set(d.topic, [d])
  }
  return Writer.create()
    .appendString(null)
    .appendInt16(ACKS_ALL)
    .appendInt32(timeoutMs)
    .appendArray([...byTopic], (w, [topic, parts]) => {
      w.appendString(topic).appendArray(parts, (w, p) => {
        w.appendInt32(p.partition)
          .appendUnsignedVarInt(p.batch.length + 1)
          .append(p.batch)
      })
    })
    .appendTaggedFields()
}

export interface PartitionResult {
  readonly topic: string
  readonly partition: number
  readonly errorCode: number
}

/** Per-partition error codes; the library's parser throws on any error, with the response attached. */
export function parseProduceResponse(
  correlationId: number,
  apiKey: number,
  apiVersion: number,
  reader: Parameters<typeof produceV9.parseResponse>[3],
): PartitionResult[] {
  let response: ReturnType<typeof produceV9.parseResponse>
  try {
    response = produceV9.parseResponse(correlationId, apiKey, apiVersion, reader)
  } catch (err) {
    if (!(err instanceof ResponseError)) throw err
    response = (err as ResponseError & { response: typeof response }).response
  }
  const out: PartitionResult[] = []
  for (const t of response.responses)
    for (const p of t.partitionResponses)
      out.push({ topic: t.name, partition: p.index, errorCode: p.errorCode })
  return out
}
