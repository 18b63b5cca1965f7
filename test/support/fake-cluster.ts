// A Cluster (kafka/cluster.ts) whose connections are in-process fakes, for unit tests of what sits
// on it (BatchSink): the Cluster's own code runs — metadata into leaders, request deadlines,
// dropping a connection that misses one — and only the socket and the broker behind it are
// replaced. A fake answers with what the Cluster's parsers would have returned.
import { type Connection, Reader } from '@platformatic/kafka'
import { type BrokerAddress, Cluster } from '../../kafka/cluster.js'
import type { PartitionResult } from '../../kafka/produce-request.js'

const METADATA = 3
const DESCRIBE_CONFIGS = 32
const INIT_PRODUCER_ID = 22
const PRODUCE = 0
const LEADER_NOT_AVAILABLE = 5

/** A Produce request as the broker read it. */
export interface ProduceRequest {
  readonly acks: number
  readonly partitions: readonly { topic: string; partition: number; batch: Buffer }[]
}

/** The broker's answer for one partition of a Produce: a Kafka error code (0: written), or none at all. */
export type ProduceAnswer = number | 'silent'

type Callback = (err: Error | null, value?: unknown) => void

export class FakeCluster extends Cluster {
  /** Every Produce request received, in order. */
  readonly produced: ProduceRequest[] = []
  /** How the broker answers a partition (a request with any silent partition gets no answer). */
  answer: (topic: string, partition: number) => ProduceAnswer = () => 0
  /** Answers list the partitions in the reverse of the request's order (a broker keeps none). */
  reverseAnswers = false
  /** While set, Produce answers wait for release(). */
  holding = false
  private readonly held: (() => void)[] = []
  private producerIds = 0n

  /**
   * `leaders`: per topic, each partition's leader node id (-1: none; a leader not in `brokers` is
   * one the metadata does not list), read at every metadata request, so a test can change it.
   */
  constructor(
    readonly leaders: Record<string, number[]>,
    readonly brokers: readonly number[] = [1],
    /** max.message.bytes per topic (unknown when absent). */
    readonly topicLimits: Record<string, number> = {},
  ) {
    super(['fake:1'], 'adgate-test', {}, Object.keys(leaders))
  }

  override connection(to: BrokerAddress): Promise<Connection> {
    return Promise.resolve(new FakeConnection(this, to) as unknown as Connection)
  }

  /** Answer the Produce requests held so far. */
  release(): void {
    for (const answer of this.held.splice(0)) answer()
  }

  /** The parsed answer to one request, or null for none. */
  respond(apiKey: number, payload: () => { buffer: Buffer }): unknown {
    if (apiKey === METADATA)
      return {
        brokers: this.brokers.map((nodeId) => ({ nodeId, host: `broker-${nodeId}`, port: 9092 })),
        topics: Object.entries(this.leaders).map(([name, leaders]) => ({
          name,
          errorCode: 0,
          partitions: leaders.map((leaderId, partitionIndex) => ({
            partitionIndex,
            leaderId,
            errorCode: leaderId < 0 ? LEADER_NOT_AVAILABLE : 0,
          })),
        })),
      }
    if (apiKey === DESCRIBE_CONFIGS)
      return {
        results: Object.keys(this.leaders).map((resourceName) => ({
          resourceName,
          errorCode: 0,
          configs:
            this.topicLimits[resourceName] === undefined
              ? []
              : [{ name: 'max.message.bytes', value: String(this.topicLimits[resourceName]) }],
        })),
      }
    if (apiKey === INIT_PRODUCER_ID) return { producerId: ++this.producerIds, producerEpoch: 0 }
    if (apiKey !== PRODUCE) throw new Error(`the fake broker does not answer API ${apiKey}`)
    const request = readProduce(Reader.from(payload().buffer))
    this.produced.push(request)
    const answers = request.partitions.map((p) => this.answer(p.topic, p.partition))
    if (answers.includes('silent')) return null
    const results = request.partitions.map(
      ({ topic, partition }, i): PartitionResult => ({ topic, partition, errorCode: answers[i] as number }),
    )
    return this.reverseAnswers ? results.reverse() : results
  }

  hold(answer: () => void): void {
    this.held.push(answer)
  }
}

/** The part of @platformatic/kafka's Connection that Cluster uses. */
class FakeConnection {
  status = 'connected'

  constructor(
    private readonly cluster: FakeCluster,
    private readonly at: BrokerAddress,
  ) {}

  get host(): string {
    return this.at.host
  }

  get port(): number {
    return this.at.port
  }

  isConnected(): boolean {
    return this.status === 'connected'
  }

  send(
    apiKey: number,
    _apiVersion: number,
    payload: () => { buffer: Buffer },
    _parser: unknown,
    _flexibleRequest: boolean,
    _flexibleResponse: boolean,
    callback: Callback,
  ): void {
    const value = this.cluster.respond(apiKey, payload)
    if (value === null) return
    const answer = () => queueMicrotask(() => callback(null, value))
    if (apiKey === PRODUCE && this.cluster.holding) this.cluster.hold(answer)
    else answer()
  }

  close(): Promise<void> {
    this.status = 'closed'
    return Promise.resolve()
  }
}

/**
 * Produce v9 (kafka/produce-request.ts): transactional_id acks timeout_ms
 * [topic [partition records TAG_BUFFER] TAG_BUFFER] TAG_BUFFER, compact forms.
 */
function readProduce(r: Reader): ProduceRequest {
  r.readNullableString()
  const acks = r.readInt16()
  r.readInt32()
  const partitions = r
    .readArray((r) => {
      const topic = r.readString()
      return r.readArray((r) => ({ topic, partition: r.readInt32(), batch: r.readBytes() }))
    })
    .flat()
  return { acks, partitions }
}
