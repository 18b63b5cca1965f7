// Smoke test of the test harness itself: the broker started by test/global-setup.ts accepts
// topic admin, acks=all produce and group consumption. If this fails, every Kafka test will.
import { randomUUID } from 'node:crypto'
// Declaration mirrored in test/kafka-cluster-harness.test.ts: both smoke-test a broker with the same client classes.
import {
  Admin,
  Consumer,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'

const brokers = inject('kafkaBrokers')
const haveKafka = brokers.length > 0
if (!haveKafka && process.env.CI === 'true') {
  throw new Error('kafkaBrokers is empty in CI: global setup should have started Kafka or failed')
}
const skipReason = '!!! SKIPPED: no Kafka broker (java not on PATH); install Java 17 to run Kafka tests !!!'

describe('kafka test harness', () => {
  it.skipIf(!haveKafka)(haveKafka ? 'produces and consumes on the local broker' : skipReason, async () => {
    const clientId = 'adgate-harness-test'
    const topic = `harness-${randomUUID()}`
    const admin = new Admin({ clientId, bootstrapBrokers: brokers })
    const producer = new Producer({
      clientId,
      bootstrapBrokers: brokers,
      acks: ProduceAcks.ALL,
      autocreateTopics: false,
      serializers: stringSerializers,
    })
    const consumer = new Consumer({
      clientId,
      groupId: `harness-${randomUUID()}`,
      bootstrapBrokers: brokers,
      sessionTimeout: 30_000,
      deserializers: stringDeserializers,
    })
    const values = ['one', 'two', 'three']

    try {
      await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
      await producer.send({ messages: values.map((value) => ({ topic, value })) })

      const received: string[] = []
      // A group member reading from the start (no commits yet); on a fresh broker the first
      // join may meet "coordinator is loading" and retry.
      const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' })
      const done = (async () => {
        for await (const m of stream) {
          received.push(m.value ?? '')
          if (received.length === values.length) return
        }
      })()
      await withTimeout(done, 30_000, () => `received only ${JSON.stringify(received)}`)
      expect(received).toEqual(values)
    } finally {
      await consumer.close(true)
      await producer.close()
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined)
      await admin.close()
    }
  })
})

async function withTimeout<T>(promise: Promise<T>, ms: number, describeFailure: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${describeFailure()}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
