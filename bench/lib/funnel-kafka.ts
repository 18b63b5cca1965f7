import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import type { SourceRecord } from '../../correlator/source.js'
import { sourceTopics, topicNames } from '../../correlator/topics.js'
import { PARTITIONS } from './correlator-workload.js'

/**
 * The benches' Kafka chores with the client every adgate role uses (@platformatic/kafka): the
 * event topics under a prefix, records written as the gateway writes them (acks=all, LZ4), and
 * the cleanup afterwards.
 */
const clientId = 'bench'

export async function createFunnelTopics(brokers: string[], prefix: string): Promise<void> {
  const admin = new Admin({ clientId, bootstrapBrokers: brokers })
  try {
    await admin.createTopics({
      topics: sourceTopics(topicNames(prefix)),
      partitions: PARTITIONS,
      replicas: 1,
    })
  } finally {
    await admin.close()
  }
}

export function funnelProducer(brokers: string[]): Producer {
  return new Producer({ clientId, bootstrapBrokers: brokers, acks: ProduceAcks.ALL, compression: 'lz4' })
}

/** Records to `<prefix><topic>`, their own partitions, in sends of at most `perSend`. */
export async function produceRecords(
  producer: Producer,
  records: readonly SourceRecord[],
  prefix: string,
  perSend = 1000,
): Promise<void> {
  for (let i = 0; i < records.length; i += perSend) {
    await producer.send({
      messages: records.slice(i, i + perSend).map((r) => ({
        topic: prefix + r.topic,
        partition: r.partition,
        key: r.key ?? undefined,
        value: r.value,
      })),
    })
  }
}

/** Deletes the topics under `prefix` and the groups; a failure is only reported. */
export async function dropBenchTopics(
  brokers: string[],
  prefix: string,
  groups: string[] = [],
): Promise<void> {
  const admin = new Admin({ clientId, bootstrapBrokers: brokers })
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix))
    if (topics.length > 0) await admin.deleteTopics({ topics })
    if (groups.length > 0) await admin.deleteGroups({ groups })
  } catch (err) {
    process.stderr.write(`bench: cleaning up ${prefix}* failed: ${String(err)}\n`)
  } finally {
    await admin.close()
  }
}
