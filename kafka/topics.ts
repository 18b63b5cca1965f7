import type { Admin, ClusterMetadata as Metadata } from '@platformatic/kafka'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import { DLQ_TOPIC, EVENT_INFO, EVENT_TYPES } from '../events/catalog.js'
import { kafkaApiCodes } from './api-codes.js'

export const ALL_TOPICS = [...EVENT_TYPES.map((t) => EVENT_INFO[t].topic), DLQ_TOPIC]

/** How adgate creates topics (ADGATE_TOPIC_*); unset fields take the cluster-size defaults below. */
export interface TopicSettings {
  partitions: number
  replication?: number
  minIsr?: number
  retentionMs?: number
}

export function topicSettings(
  config: Pick<Config, 'topicPartitions' | 'topicReplication' | 'topicMinIsr' | 'topicRetentionMs'>,
): TopicSettings {
  return {
    partitions: config.topicPartitions,
    replication: config.topicReplication,
    minIsr: config.topicMinIsr,
    retentionMs: config.topicRetentionMs,
  }
}

export interface TopicLayout {
  replicationFactor: number
  minInsyncReplicas: number
}

const TOPIC_ALREADY_EXISTS = 36
const LEADERS_TIMEOUT_MS = 30_000
const DESCRIBE_TIMEOUT_MS = 10_000

/**
 * Replication factor min(3, brokers) and min.insync.replicas RF−1 (at least 1): with acks=all a
 * write then survives the loss of any one broker, and one broker may be down without refusing writes.
 */
export function topicLayout(settings: TopicSettings, brokers: number): TopicLayout {
  const replicationFactor = settings.replication ?? Math.max(1, Math.min(3, brokers))
  const minInsyncReplicas = settings.minIsr ?? Math.max(1, replicationFactor - 1)
  return { replicationFactor, minInsyncReplicas }
}

/**
 * Creates the missing ones of `topics` (idempotent: existing topics are left as they are, and a
 * topic another instance creates meanwhile is fine), waits until each has partition leaders, and
 * warns about existing topics with a single replica on a cluster that could hold more.
 */
export async function ensureTopics(
  admin: Admin,
  topics: readonly string[],
  settings: TopicSettings,
  logger?: Logger,
): Promise<TopicLayout> {
  const cluster = await admin.metadata({ topics: [] })
  const layout = topicLayout(settings, cluster.brokers.size)
  const existing = new Set(await admin.listTopics())
  const missing = topics.filter((t) => !existing.has(t))
  const present = topics.filter((t) => existing.has(t))
  if (missing.length > 0) {
    const configs = [{ name: 'min.insync.replicas', value: String(layout.minInsyncReplicas) }]
    if (settings.retentionMs !== undefined)
      configs.push({ name: 'retention.ms', value: String(settings.retentionMs) })
    const raced = await admin
      .createTopics({
        topics: missing,
        partitions: settings.partitions,
        replicas: layout.replicationFactor,
        configs,
      })
      .then(
        () => false,
        (err: unknown) => {
          const codes = kafkaApiCodes(err)
          if (codes.length === 0 || codes.some((code) => code !== TOPIC_ALREADY_EXISTS)) throw err
          return true
        },
      )
    await waitForLeaders(admin, missing)
    // Some existed after all (created meanwhile, or not yet listed by the broker asked): check them too.
    if (raced) present.push(...missing)
    else logger?.info({ topics: missing, ...layout, partitions: settings.partitions }, 'created Kafka topics')
  }
  if (present.length > 0 && cluster.brokers.size > 1)
    await warnSingleReplica(admin, present, cluster.brokers.size, logger)
  return layout
}

/**
 * Warns about `topics` holding a partition with one replica. A topic just created elsewhere may
 * not be in every broker's metadata yet: asks again until all are described (bounded, no warning).
 */
async function warnSingleReplica(
  admin: Admin,
  topics: string[],
  brokers: number,
  logger?: Logger,
): Promise<void> {
  const described = (meta: Metadata) => topics.every((t) => (meta.topics.get(t)?.partitions.length ?? 0) > 0)
  const meta = await metadataWhen(admin, topics, described, DESCRIBE_TIMEOUT_MS)
  if (meta === null) return
  const single = topics.filter((t) => meta.topics.get(t)!.partitions.some((p) => p.replicas.length === 1))
  if (single.length > 0)
    logger?.warn(
      { topics: single, brokers },
      'these topics keep one copy of each event on a multi-broker cluster (replication factor 1): a broker loss loses acknowledged events; raise their replication (kafka-reassign-partitions)',
    )
}

/** A topic just created has no leaders for a moment; producing to it then fails. */
async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const led = (meta: Metadata) =>
    topics.every((t) => meta.topics.get(t)?.partitions.every((p) => p.leader >= 0))
  if ((await metadataWhen(admin, topics, led, LEADERS_TIMEOUT_MS)) === null)
    throw new Error(
      `topics without partition leaders after ${LEADERS_TIMEOUT_MS / 1000} s: ${topics.join(', ')}`,
    )
}

/** Fresh metadata of `topics` once `ok` holds for it (asked every 200 ms), or null after `timeoutMs`. */
async function metadataWhen(
  admin: Admin,
  topics: string[],
  ok: (meta: Metadata) => boolean,
  timeoutMs: number,
): Promise<Metadata | null> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const meta = await admin.metadata({ topics, forceUpdate: true }).catch(() => null)
    if (meta !== null && ok(meta)) return meta
    if (Date.now() > deadline) return null
    await new Promise((r) => setTimeout(r, 200))
  }
}
