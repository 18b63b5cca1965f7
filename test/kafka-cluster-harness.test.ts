// Smoke test of the secured cluster the test setup starts (scripts/kafka-cluster.mjs): TLS with the
// test CA, SCRAM and mTLS logins, ACLs enforced, replication factor 3 and min.insync.replicas 2 by
// default. If this fails, every secured-cluster test and fault scenario will.
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
// Declaration mirrored in test/kafka-harness.test.ts: both smoke-test a broker with the same client classes.
import {
  Admin,
  Consumer,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { kafkaApiCodes } from '../kafka/api-codes.js'
import { clusterClientOptions, type KafkaCluster, requiredCluster } from './support/kafka-cluster.js'

const cluster = requiredCluster()
const skipReason =
  '!!! SKIPPED: no secured Kafka cluster (java not on PATH); install Java 17 to run these !!!'
const TOPIC_AUTHORIZATION_FAILED = 29
const name = (what: string) => `${what}-${randomUUID()}`

describe.skipIf(!cluster)(cluster ? 'secured kafka cluster harness' : skipReason, () => {
  const c = cluster as KafkaCluster
  const topic = `${c?.aclPrefix}-harness-${randomUUID()}`
  const admin = cluster ? new Admin({ clientId: 'harness', ...clusterClientOptions(c, 'adgate') }) : undefined

  beforeAll(async () => {
    await admin?.createTopics({ topics: [topic], partitions: 2 })
  })
  afterAll(async () => {
    await admin?.deleteTopics({ topics: [topic] }).catch(() => undefined)
    await admin?.close()
  })

  const produce = async (options: { bootstrapBrokers: string[]; tls?: object }, value: string) => {
    const producer = new Producer({
      clientId: name('harness'),
      serializers: stringSerializers,
      retries: 0,
      timeout: 10_000,
      ...options,
    })
    try {
      return await producer.send({ messages: [{ topic, key: value, value }], acks: ProduceAcks.ALL })
    } finally {
      await producer.close()
    }
  }

  it('creates topics with replication factor 3 and min.insync.replicas 2 by default', async () => {
    const metadata = await admin?.metadata({ topics: [topic], forceUpdate: true })
    expect(metadata?.brokers.size).toBe(3)
    for (const partition of metadata?.topics.get(topic)?.partitions ?? [])
      expect(partition.replicas).toHaveLength(3)
    const [description] =
      (await admin?.describeConfigs({
        resources: [{ resourceType: 2, resourceName: topic, configurationKeys: ['min.insync.replicas'] }],
      })) ?? []
    expect(description?.configs.find((e) => e.name === 'min.insync.replicas')?.value).toBe('2')
  })

  it('lets adgate produce and consume over SASL_SSL (SCRAM-SHA-512)', async () => {
    await produce(clusterClientOptions(c, 'adgate'), 'scram')
    const consumer = new Consumer({
      clientId: name('harness'),
      groupId: `${c.aclPrefix}-${randomUUID()}`,
      deserializers: stringDeserializers,
      ...clusterClientOptions(c, 'adgate'),
    })
    try {
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
      for await (const message of stream) {
        expect(message.value).toBe('scram')
        break
      }
    } finally {
      await consumer.close(true)
    }
  })

  it('lets adgate produce with its client certificate (mTLS)', async () => {
    const tls = {
      ca: fs.readFileSync(c.caFile),
      cert: fs.readFileSync(c.clientCertFile),
      key: fs.readFileSync(c.clientKeyFile),
    }
    await produce({ bootstrapBrokers: c.mtlsBrokers, tls }, 'mtls')
  })

  it('refuses a user without ACLs, a wrong password and a plaintext client', async () => {
    const denied = await produce(clusterClientOptions(c, 'noacl'), 'noacl').catch((err: unknown) => err)
    expect(kafkaApiCodes(denied)).toContain(TOPIC_AUTHORIZATION_FAILED)
    const wrong = clusterClientOptions(c, 'adgate')
    wrong.sasl.password = 'not-the-password'
    await expect(produce(wrong, 'wrong')).rejects.toThrow()
    await expect(produce({ bootstrapBrokers: c.brokers }, 'plain')).rejects.toThrow()
  })
})
