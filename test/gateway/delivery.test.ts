// Delivery's routing per topic-partition, against a fake sink and spool (no Kafka, no SQLite):
// a partition without a leader, failing, or still in the spool goes to the spool while the others
// go to Kafka; a partition with a direct send pending keeps its order; a batch over its own topic's
// max.message.bytes refuses only that topic; early refusals name the error-table code.
import { describe, expect, it } from 'vitest'
import { Delivery, deliveryErrorCode } from '../../gateway/delivery.js'
import {
  ACKED,
  type BatchSet,
  type BatchSink,
  KafkaRefusedError,
  REFUSED,
  type RefusedBatches,
  type SendProgress,
} from '../../kafka/batch-sink.js'
import type { EncodedBatch } from '../../kafka/protocol/record-batch.js'
import type { Spool } from '../../spool/spool.js'

const key = (b: { topic: string; partition: number }) => `${b.topic}/${b.partition}`

/**
 * Kafka with per-partition availability; sends to `hanging` partitions are never answered, and
 * the broker refuses batches of `refusing` partitions (MESSAGE_TOO_LARGE, its limit unknown here).
 */
class Sink {
  ready = true
  securityFailure: string | null = null
  readonly down = new Set<string>()
  readonly hanging = new Set<string>()
  readonly refusing = new Set<string>()
  readonly limits = new Map<string, number>()
  readonly sent: string[] = []

  available(topic: string, partition: number): boolean {
    return !this.down.has(key({ topic, partition }))
  }
  batchRefusal(b: EncodedBatch): KafkaRefusedError | null {
    const limit = this.limits.get(b.topic)
    return limit !== undefined && b.length > limit
      ? new KafkaRefusedError('too large', 'MESSAGE_TOO_LARGE')
      : null
  }
  send(set: BatchSet, progress?: SendProgress): Promise<RefusedBatches> {
    let hang = false
    const refused = progress?.refused ?? new Map<number, KafkaRefusedError>()
    set.batches.forEach((b, i) => {
      this.sent.push(key(b))
      if (this.hanging.has(key(b))) hang = true
      else if (this.refusing.has(key(b))) {
        refused.set(i, new KafkaRefusedError('Kafka refused: MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE'))
        if (progress) progress.acked[i] = REFUSED
      } else if (progress) progress.acked[i] = ACKED
    })
    return hang ? new Promise(() => {}) : Promise.resolve(refused)
  }
}

class Spool_ {
  readonly full = false
  readonly appended: string[] = []
  /** `topic/partition#length` of each batch appended, in order. */
  readonly appendedSizes: string[] = []
  holds(topic: string, partition: number): boolean {
    return this.appended.includes(key({ topic, partition }))
  }
  async append(set: BatchSet): Promise<void> {
    for (const b of set.batches) {
      this.appended.push(key(b))
      this.appendedSizes.push(`${key(b)}#${b.length}`)
    }
  }
}

function task(...parts: [string, number, number?][]): BatchSet {
  let offset = 0
  const batches = parts.map(([topic, partition, length = 100]) => {
    const b = { topic, partition, records: 1, offset, length }
    offset += length
    return b
  })
  return { buffer: Buffer.alloc(offset), batches }
}

function setup(spoolAfterMs = 20) {
  const sink = new Sink()
  const spool = new Spool_()
  const delivery = new Delivery(sink as unknown as BatchSink, spool as unknown as Spool, spoolAfterMs)
  return { sink, spool, delivery }
}

describe('Delivery', () => {
  it('sends the healthy partitions to Kafka and spools only the one without a leader', async () => {
    const { sink, spool, delivery } = setup()
    sink.down.add('imp/0')
    await delivery.deliver(task(['imp', 0], ['imp', 1], ['bid', 0]))
    expect(sink.sent).toEqual(['imp/1', 'bid/0'])
    expect(spool.appended).toEqual(['imp/0'])
    expect(delivery.records).toEqual({ kafka: 2, spool: 1 })
  })

  it('keeps spooling a partition while the spool holds its older batches, even once it is back', async () => {
    const { sink, spool, delivery } = setup()
    sink.down.add('imp/0')
    await delivery.deliver(task(['imp', 0]))
    sink.down.clear()
    await delivery.deliver(task(['imp', 0], ['imp', 1]))
    expect(spool.appended).toEqual(['imp/0', 'imp/0'])
    expect(sink.sent).toEqual(['imp/1'])
  })

  it('spools only the batches Kafka has not acknowledged in time', async () => {
    const { sink, spool, delivery } = setup()
    sink.hanging.add('imp/0')
    await delivery.deliver(task(['imp', 0], ['imp', 1]))
    expect(sink.sent).toEqual(['imp/0', 'imp/1'])
    expect(spool.appended).toEqual(['imp/0'])
    expect(delivery.possibleDuplicates).toBe(1)
  })

  it('sends a partition with a direct attempt pending to Kafka behind it, not ahead of it to the spool', async () => {
    const { sink, spool, delivery } = setup(50)
    sink.hanging.add('imp/0')
    const first = delivery.deliver(task(['imp', 0, 100]))
    await new Promise((r) => setTimeout(r, 5))
    sink.down.add('imp/0') // its lane failed meanwhile
    const second = delivery.deliver(task(['imp', 0, 200]))
    await Promise.all([first, second])
    // both went to Kafka first and reached the spool in the order they were sent
    expect(sink.sent).toEqual(['imp/0', 'imp/0'])
    expect(spool.appendedSizes).toEqual(['imp/0#100', 'imp/0#200'])
  })

  it("refuses a batch over its own topic's limit, and only that topic", async () => {
    const { sink, spool, delivery } = setup()
    sink.limits.set('imp', 500)
    const refusals = await delivery.deliver(task(['imp', 0, 800], ['bid', 0, 800]))
    expect([...refusals.keys()]).toEqual(['imp'])
    expect(deliveryErrorCode(refusals.get('imp'))).toBe('EVENTS_TOO_LARGE_FOR_KAFKA')
    expect(sink.sent).toEqual(['bid/0'])
    expect(spool.appended).toEqual([])
  })

  it('a batch the broker refuses (its limit unknown) refuses its topic only; the rest of the task is delivered, nothing spooled', async () => {
    const { sink, spool, delivery } = setup()
    sink.refusing.add('imp/0')
    const refusals = await delivery.deliver(task(['imp', 0], ['imp', 1], ['bid', 0]))
    expect([...refusals.keys()]).toEqual(['imp'])
    expect(deliveryErrorCode(refusals.get('imp'))).toBe('EVENTS_TOO_LARGE_FOR_KAFKA')
    // imp/1 was written: the answer says so, since a refusal otherwise means nothing appears
    expect(refusals.get('imp')!.message).toMatch(/imp\/1 were accepted and will appear in Kafka/)
    expect(sink.sent).toEqual(['imp/0', 'imp/1', 'bid/0'])
    expect(delivery.records.kafka).toBe(2)
    expect(spool.appended).toEqual([])
  })

  it('names KAFKA_UNAUTHORIZED before anything is produced while Kafka rejects adgate', () => {
    const { sink, delivery } = setup()
    expect(delivery.unavailable).toBeNull()
    sink.securityFailure = 'SASL authentication failed: check KAFKA_SASL_PASSWORD'
    expect(delivery.unavailable).toEqual({
      code: 'KAFKA_UNAUTHORIZED',
      detail: 'SASL authentication failed: check KAFKA_SASL_PASSWORD',
    })
    expect(delivery.ready).toBe(false)
  })
})
