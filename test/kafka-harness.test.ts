// Smoke test of the test harness itself: the broker started by test/global-setup.ts accepts
// topic admin, acks=all produce and group consumption. If this fails, every Kafka test will.
import { randomUUID } from 'node:crypto'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import { describe, expect, inject, it } from 'vitest'

const brokers = inject('kafkaBrokers')
const haveKafka = brokers.length > 0
if (!haveKafka && process.env.CI === 'true') {
  throw new Error('kafkaBrokers is empty in CI: global setup should have started Kafka or failed')
}
const skipReason = '!!! SKIPPED: no Kafka broker (java not on PATH); install Java 17 to run Kafka tests !!!'

describe('kafka test harness', () => {
  it.skipIf(!haveKafka)(haveKafka ? 'produces and consumes on the local broker' : skipReason, async () => {
    const kafka = new Kafka({ clientId: 'adgate-harness-test', brokers, logLevel: logLevel.WARN })
    const topic = `harness-${randomUUID()}`
    const admin = kafka.admin()
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    })
    const consumer = kafka.consumer({ groupId: `harness-${randomUUID()}`, sessionTimeout: 30_000 })
    const values = ['one', 'two', 'three']

    await admin.connect()
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1 }],
        waitForLeaders: true,
        timeout: 30_000,
      })

      await producer.connect()
      await producer.send({ topic, acks: -1, timeout: 30_000, messages: values.map((value) => ({ value })) })

      const received: string[] = []
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      let allReceived!: () => void
      const done = new Promise<void>((resolve) => {
        allReceived = resolve
      })
      // On a fresh broker the first group join may log "coordinator is loading" and retry.
      await consumer.run({
        eachMessage: async ({ message }) => {
          received.push(message.value?.toString() ?? '')
          if (received.length === values.length) allReceived()
        },
      })
      await withTimeout(done, 30_000, () => `received only ${JSON.stringify(received)}`)
      expect(received).toEqual(values)
    } finally {
      await consumer.disconnect()
      await producer.disconnect()
      await admin.deleteTopics({ topics: [topic], timeout: 30_000 }).catch(() => undefined)
      await admin.disconnect()
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
