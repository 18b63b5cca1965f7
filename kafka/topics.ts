import type { Admin } from 'kafkajs'
import { DLQ_TOPIC, EVENT_INFO, EVENT_TYPES } from '../events/catalog.js'

export const ALL_TOPICS = [...EVENT_TYPES.map((t) => EVENT_INFO[t].topic), DLQ_TOPIC]

/** Create adgate's topics when missing (idempotent; existing topics are left as they are). */
export async function ensureTopics(admin: Admin, partitions: number, replicationFactor = -1): Promise<void> {
  const existing = new Set(await admin.listTopics())
  const missing = ALL_TOPICS.filter((t) => !existing.has(t))
  if (missing.length === 0) return
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
  })
}
