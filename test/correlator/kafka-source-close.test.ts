// KafkaSource.close() when the group coordinator refuses the LeaveGroup (seen after a broker
// restart in the kafka-restart test): the refusal is reported and tried once more, never thrown,
// so the correlator's stop goes on to close its HTTP server, producer and storage. The consumer's
// close is replaced here (a unit test): a real coordinator cannot be made to refuse on demand.
import { describe, expect, it } from 'vitest'
import { KafkaSource } from '../../correlator/kafka-source.js'

/** A source whose consumer's close() fails `failures` times with a LeaveGroup response error. */
function sourceWithRefusals(failures: number) {
  const reported: string[] = []
  const source = new KafkaSource({
    brokers: ['127.0.0.1:1'],
    clientId: 'adgate-test',
    groupId: 'adgate-test-close',
    topics: ['adgate.bids'],
    retryMs: 10,
    onError: (_err, msg) => reported.push(msg),
  })
  let calls = 0
  const consumer = (source as unknown as { consumer: { close(): Promise<void> } }).consumer
  consumer.close = async () => {
    if (++calls <= failures)
      throw new AggregateError(
        [{ apiCode: 15 }],
        'Received response with error while executing API LeaveGroup(v5)',
      )
  }
  return { source, reported, calls: () => calls }
}

describe('KafkaSource.close when leaving the group is refused', () => {
  it('tries once more and resolves when the second leave is taken', async () => {
    const { source, reported, calls } = sourceWithRefusals(1)
    await source.close()
    expect(calls()).toBe(2)
    expect(reported).toEqual(['leaving the consumer group failed (Kafka error codes: 15); trying again'])
  })

  it('resolves, with the refusal reported, when both are refused', async () => {
    const { source, reported, calls } = sourceWithRefusals(5)
    await source.close()
    expect(calls()).toBe(2)
    expect(reported[1]).toBe(
      'leaving the consumer group failed (Kafka error codes: 15); its partitions move on after the session timeout',
    )
  })
})
