// The nodes of the secured three-node cluster (scripts/kafka-cluster.mjs) as a fault scenario
// drives them: find a partition's leader, kill -9, SIGSTOP/SIGCONT, controlled shutdown, restart,
// and wait until every adgate partition is fully replicated again.

import { readFileSync } from 'node:fs'
import { Admin } from '@platformatic/kafka'
import type { KafkaConnectionOptions } from '../../../kafka/client-options.js'
import { ALL_TOPICS } from '../../../kafka/topics.js'
import { clusterClientOptions, type KafkaCluster, runClusterScript } from '../../support/kafka-cluster.js'
import { sleep } from './load.js'

const HEALTHY_TIMEOUT_MS = 120_000

export class ClusterNodes {
  readonly brokers: string[]
  /** the adgate user's TLS + SCRAM options, for reading back */
  readonly connection: KafkaConnectionOptions
  private readonly admin: Admin
  private readonly frozen = new Set<number>()

  constructor(private readonly cluster: KafkaCluster) {
    this.brokers = cluster.brokers
    const { bootstrapBrokers: _, ...connection } = clusterClientOptions(cluster, 'adgate')
    this.connection = connection
    this.admin = new Admin({ clientId: 'adgate-fault-control', ...clusterClientOptions(cluster, 'admin') })
  }

  /** Node id leading the partition now. */
  async leaderOf(topic: string, partition: number): Promise<number> {
    const meta = await this.admin.metadata({ topics: [topic], forceUpdate: true })
    const leader = meta.topics.get(topic)?.partitions[partition]?.leader ?? -1
    if (leader < 0) throw new Error(`${topic}-${partition} has no leader`)
    return leader
  }

  private pid(id: number): number {
    const node = this.cluster.nodes.find((n) => n.id === id)
    if (!node) throw new Error(`no node ${id}`)
    return Number(readFileSync(node.pidFile, 'utf8').trim())
  }

  kill9(id: number): void {
    process.kill(this.pid(id), 'SIGKILL')
  }

  /** SIGSTOP: connections stay open and nothing answers (a hung broker, a long GC pause). */
  freeze(id: number): void {
    process.kill(this.pid(id), 'SIGSTOP')
    this.frozen.add(id)
  }

  thaw(id: number): void {
    process.kill(this.pid(id), 'SIGCONT')
    this.frozen.delete(id)
  }

  /** Controlled shutdown (SIGTERM): the node hands its leaderships over before it exits. */
  stop(id: number): Promise<void> {
    return runClusterScript(['stop', String(id)]).then(() => {})
  }

  /** Starts the nodes that are not running and waits until all answer. */
  start(): Promise<void> {
    return runClusterScript(['start']).then(() => {})
  }

  /** Resolves with the ms it took until three brokers are listed and every adgate partition has all three in sync. */
  async healthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<number> {
    const started = Date.now()
    for (;;) {
      // adgate's topics exist once a gateway has created them
      const topics = await this.admin.listTopics().then(
        (all) => ALL_TOPICS.filter((t) => all.includes(t)),
        () => null,
      )
      const meta = topics && (await this.admin.metadata({ topics, forceUpdate: true }).catch(() => null))
      const ok =
        topics !== null &&
        meta !== null &&
        meta.brokers.size === this.cluster.nodes.length &&
        topics.every((t) =>
          meta.topics.get(t)?.partitions.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length),
        )
      if (ok) return Date.now() - started
      if (Date.now() - started > timeoutMs)
        throw new Error(`cluster not fully in sync after ${timeoutMs / 1000} s`)
      await sleep(500)
    }
  }

  /** Whatever a scenario left behind: thawed, every node running, in sync. */
  async release(): Promise<void> {
    for (const id of this.frozen) this.thaw(id)
    try {
      await this.start()
      await this.healthy()
    } finally {
      await this.admin.close()
    }
  }
}
