import { type Connection, Reader, type ResponseParser, Writer } from '@platformatic/kafka'
import { type BrokerAddress, Cluster } from '../../kafka/cluster.js'

const PRODUCE = 0
const METADATA = 3
const INIT_PRODUCER_ID = 22
const DESCRIBE_CONFIGS = 32

/**
 * A Cluster (kafka/cluster.ts) of one broker that answers every request at once and in process,
 * for what the producer's own code costs without a socket or a broker: each Produce is framed as
 * @platformatic/kafka's Connection frames it (its header writer, the pieces joined into one
 * buffer), and answered in the next turn of the loop, as a socket read would be, through the
 * parser the caller gives, from a response that acknowledges every partition of `topic`. The rest
 * (metadata, a producer id, no topic limits) comes parsed. The Cluster's own request path runs.
 */
export class AnsweringCluster extends Cluster {
  private readonly produced: Buffer

  constructor(
    readonly topic: string,
    readonly partitions: number,
  ) {
    super(['bench:1'], 'adgate-bench', {}, [topic])
    const w = Writer.create()
      .appendUnsignedVarInt(2)
      .appendString(topic)
      .appendUnsignedVarInt(partitions + 1)
    for (let p = 0; p < partitions; p++)
      w.appendInt32(p)
        .appendInt16(0)
        .appendInt64(0n)
        .appendInt64(-1n)
        .appendInt64(0n)
        .appendUnsignedVarInt(1)
        .appendString(null)
        .appendTaggedFields()
    this.produced = w.appendTaggedFields().appendInt32(0).appendTaggedFields().buffer
  }

  override connection(to: BrokerAddress): Promise<Connection> {
    return Promise.resolve(new AnsweringConnection(this, to) as unknown as Connection)
  }

  answer(apiKey: number, parser: ResponseParser<unknown>, correlationId: number): unknown {
    if (apiKey === PRODUCE) {
      return parser(correlationId, PRODUCE, 9, Reader.from(this.produced))
    }
    if (apiKey === METADATA)
      return {
        brokers: [{ nodeId: 1, host: 'bench', port: 1 }],
        topics: [
          {
            name: this.topic,
            errorCode: 0,
            partitions: Array.from({ length: this.partitions }, (_, partitionIndex) => ({
              partitionIndex,
              leaderId: 1,
              errorCode: 0,
            })),
          },
        ],
      }
    if (apiKey === DESCRIBE_CONFIGS) return { results: [] }
    if (apiKey === INIT_PRODUCER_ID) return { producerId: 1n, producerEpoch: 0 }
    throw new Error(`the answering broker does not answer API ${apiKey}`)
  }
}

/** The part of @platformatic/kafka's Connection that Cluster uses. */
class AnsweringConnection {
  readonly status = 'connected'
  private correlationId = 0

  constructor(
    private readonly cluster: AnsweringCluster,
    private readonly at: BrokerAddress,
  ) {}

  get host(): string {
    return this.at.host
  }

  get port(): number {
    return this.at.port
  }

  isConnected(): boolean {
    return true
  }

  send(
    apiKey: number,
    apiVersion: number,
    payload: () => Writer,
    parser: ResponseParser<unknown>,
    flexibleRequest: boolean,
    _flexibleResponse: boolean,
    callback: (err: Error | null, value?: unknown) => void,
  ): void {
    const correlationId = ++this.correlationId
    const request = Writer.create()
      .appendInt16(apiKey)
      .appendInt16(apiVersion)
      .appendInt32(correlationId)
      .appendString('adgate-bench', false)
    if (flexibleRequest) request.appendTaggedFields()
    void request.appendFrom(payload()).prependLength().buffer
    setImmediate(() => {
      try {
        callback(null, this.cluster.answer(apiKey, parser, correlationId))
      } catch (err) {
        callback(err as Error)
      }
    })
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}
