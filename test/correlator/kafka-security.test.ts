// The correlator's Kafka transport on the secured cluster (TLS, SCRAM-SHA-512, ACLs), connected
// with the shared security options as the gateway is: its consumer group creates its topics and
// reads what was written, the re-key producer writes, and a user without ACLs is refused.
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { KafkaRekeyProducer, KafkaSource } from '../../correlator/kafka-source.js'
import type { SourceRecord } from '../../correlator/source.js'
import { inputTopics, topicNames } from '../../correlator/topics.js'
import { kafkaApiCodes } from '../../kafka/api-codes.js'
import { type ClusterUserName, clusterClientOptions, type KafkaCluster } from '../support/kafka-cluster.js'

const TOPIC_AUTHORIZATION_FAILED = 29
const cluster = inject('kafkaCluster')
const skipReason = '!!! SKIPPED: no secured Kafka cluster (java not on PATH) !!!'

describe.skipIf(!cluster)(cluster ? 'correlator transport on the secured cluster' : skipReason, () => {
  const c = cluster as KafkaCluster
  const names = topicNames(`${c?.aclPrefix}-t${randomBytes(4).toString('hex')}.`)
  const topics = inputTopics(true, names)
  const connection = (user: ClusterUserName) => {
    const { bootstrapBrokers: _, ...rest } = clusterClientOptions(c, user)
    return rest
  }
  const source = (user: ClusterUserName) =>
    new KafkaSource({
      brokers: c.brokers,
      clientId: 'adgate-test',
      groupId: `${c.aclPrefix}-test-${randomBytes(4).toString('hex')}`,
      topics,
      names,
      createPartitions: 2,
      connection: connection(user),
    })
  const stops: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const stop of stops) await stop()
  })

  it('creates its topics, re-keys through them and reads back over SASL_SSL as the adgate user', async () => {
    const s = source('adgate')
    stops.push(() => s.stop().then(() => s.close()))
    expect(await s.partitions()).toBe(2)
    const producer = new KafkaRekeyProducer(c.brokers, 'adgate-test', connection('adgate'))
    stops.push(() => producer.close())
    const value = Buffer.from(JSON.stringify({ id: 'x' }))
    await producer.send([
      { topic: names.rekeyedImpressions, partition: 0, key: Buffer.from('k0'), value },
      { topic: names.rekeyedClicks, partition: 1, key: null, value },
    ])
    const seen: SourceRecord[] = []
    let gotBoth!: () => void
    const both = new Promise<void>((resolve) => {
      gotBoth = resolve
    })
    await s.start({
      async onBatch(records) {
        seen.push(...records)
        if (seen.length >= 2) gotBoth()
      },
    })
    await both
    expect(seen.map((r) => `${r.topic}:${r.partition}`).sort()).toEqual(
      [`${names.rekeyedClicks}:1`, `${names.rekeyedImpressions}:0`].sort(),
    )
    expect((await s.ends()).filter((e) => e.end > 0n)).toHaveLength(2)
  }, 90_000)

  it('is refused as a user without ACLs', async () => {
    const s = source('noacl')
    stops.push(() => s.close().catch(() => undefined))
    const refused = await s.partitions().catch((err: unknown) => err)
    expect(kafkaApiCodes(refused)).toContain(TOPIC_AUTHORIZATION_FAILED)
  }, 60_000)
})
