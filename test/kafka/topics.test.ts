import { randomUUID } from 'node:crypto'
import { Admin } from '@platformatic/kafka'
import type { Logger } from 'pino'
import { describe, expect, inject, it, vi } from 'vitest'
import { ensureTopics, topicLayout } from '../../kafka/topics.js'
import { clusterClientOptions, type KafkaCluster } from '../support/kafka-cluster.js'

describe('topicLayout', () => {
  it('replicates min(3, brokers) times with min.insync.replicas RF-1, at least 1', () => {
    expect(topicLayout({ partitions: 4 }, 1)).toEqual({ replicationFactor: 1, minInsyncReplicas: 1 })
    expect(topicLayout({ partitions: 4 }, 2)).toEqual({ replicationFactor: 2, minInsyncReplicas: 1 })
    expect(topicLayout({ partitions: 4 }, 3)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 })
    expect(topicLayout({ partitions: 4 }, 7)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 })
  })

  it('takes configured values over the defaults', () => {
    expect(topicLayout({ partitions: 4, replication: 5 }, 7)).toEqual({
      replicationFactor: 5,
      minInsyncReplicas: 4,
    })
    expect(topicLayout({ partitions: 4, replication: 3, minIsr: 3 }, 3)).toEqual({
      replicationFactor: 3,
      minInsyncReplicas: 3,
    })
  })
})

const cluster = inject('kafkaCluster')
const skipReason = '!!! SKIPPED: no secured Kafka cluster (java not on PATH) !!!'

describe.skipIf(!cluster)(cluster ? 'ensureTopics on the secured 3-broker cluster' : skipReason, () => {
  const c = cluster as KafkaCluster
  const fakeLogger = () =>
    ({ info: vi.fn(), warn: vi.fn() }) as unknown as Logger & { warn: ReturnType<typeof vi.fn> }

  it('creates missing topics with RF 3, min.insync.replicas 2, partitions and retention, once', async () => {
    const admin = new Admin({ clientId: 'topics-test', ...clusterClientOptions(c, 'adgate') })
    const topics = [`${c.aclPrefix}-topics-${randomUUID()}`, `${c.aclPrefix}-topics-${randomUUID()}`]
    try {
      const settings = { partitions: 2, retentionMs: 3_600_000 }
      expect(await ensureTopics(admin, topics, settings)).toEqual({
        replicationFactor: 3,
        minInsyncReplicas: 2,
      })
      await ensureTopics(admin, topics, settings) // idempotent
      const meta = await admin.metadata({ topics, forceUpdate: true })
      for (const t of topics) {
        expect(meta.topics.get(t)?.partitionsCount).toBe(2)
        for (const p of meta.topics.get(t)?.partitions ?? []) expect(p.replicas).toHaveLength(3)
      }
      const configs = await admin.describeConfigs({
        resources: [
          {
            resourceType: 2,
            resourceName: topics[0]!,
            configurationKeys: ['min.insync.replicas', 'retention.ms'],
          },
        ],
      })
      const value = (name: string) => configs[0]?.configs.find((e) => e.name === name)?.value
      expect([value('min.insync.replicas'), value('retention.ms')]).toEqual(['2', '3600000'])
    } finally {
      await admin.deleteTopics({ topics }).catch(() => undefined)
      await admin.close()
    }
  })

  it('warns about an existing topic with replication factor 1 on a multi-broker cluster', async () => {
    const admin = new Admin({ clientId: 'topics-test', ...clusterClientOptions(c, 'adgate') })
    const topic = `${c.aclPrefix}-rf1-${randomUUID()}`
    const logger = fakeLogger()
    try {
      await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
      await ensureTopics(admin, [topic], { partitions: 1 }, logger)
      expect(logger.warn).toHaveBeenCalledOnce()
      expect(logger.warn.mock.calls[0]?.[0]).toEqual({ topics: [topic], brokers: 3 })
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined)
      await admin.close()
    }
  })
})
