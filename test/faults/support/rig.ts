// The test bench of one fault file: a private broker (never the shared one on 9092), gateways
// started on it with their memory watched, their data dirs, and clean-up of everything.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, inject } from 'vitest'
import type { KafkaConnectionOptions } from '../../../kafka/client-options.js'
import { runCommand } from '../../support/command.js'
import { type RunningGateway, startGateway } from '../../support/gateway.js'
import { clusterEnv, type KafkaCluster } from '../../support/kafka-cluster.js'
import { acquireSecondBroker, type SecondBroker } from '../../support/second-broker.js'
import { ClusterNodes } from './cluster-nodes.js'
import type { Load } from './load.js'
import { RssWatch } from './observe.js'

/** Empty when there is no Java on this machine: then no broker of our own can run either. */
export const kafkaAvailable = inject('kafkaBrokers').length > 0

/** Settings every fault scenario's gateway shares (each scenario adds its own). */
export const BASE_ENV: Readonly<Record<string, string>> = {
  ADGATE_ACK_TIMEOUT_MS: '5000',
  ADGATE_SPOOL_AFTER_MS: '1000',
  ADGATE_SHUTDOWN_TIMEOUT_MS: '8000',
}

/** What a rig's gateways write to: a private broker, or the secured cluster's nodes. */
export interface Kafka {
  readonly brokers: string[]
  /** how clients reach them (security); none for a private broker */
  readonly connection?: KafkaConnectionOptions
  release(): Promise<void>
}

export class Rig<K extends Kafka = SecondBroker> {
  readonly rss = new RssWatch()
  private readonly gateways: RunningGateway[] = []
  private readonly dirs: string[] = []

  private constructor(
    readonly broker: K,
    /** settings every gateway of this rig gets to reach the brokers (security) */
    private readonly kafkaEnv: Record<string, string> = {},
  ) {}

  /** Claim a private broker and start it. */
  static async acquire(): Promise<Rig> {
    const broker = await acquireSecondBroker()
    try {
      await broker.start()
    } catch (err) {
      await broker.release()
      throw err
    }
    return new Rig(broker)
  }

  /**
   * Gateways on the secured three-node cluster, as the adgate user (SASL_SSL, SCRAM-SHA-512), once
   * every node is healthy; with `topics`, a gateway is started and stopped first so that adgate's
   * topics exist, created as adgate creates them.
   */
  static async onCluster(cluster: KafkaCluster, { topics = false } = {}): Promise<Rig<ClusterNodes>> {
    const rig = new Rig(new ClusterNodes(cluster), clusterEnv(cluster))
    try {
      await rig.broker.healthy()
      if (topics) await (await rig.gateway()).stop()
    } catch (err) {
      await rig.release()
      throw err
    }
    return rig
  }

  get brokers(): string[] {
    return this.broker.brokers
  }

  /** A fresh data dir, removed at release(). */
  dataDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'adgate-fault-'))
    this.dirs.push(dir)
    return dir
  }

  /** Start a gateway on the rig's brokers (without the `unset` settings); pass ADGATE_DATA_DIR to restart on the same spool. */
  async gateway(env: Record<string, string> = {}, unset: readonly string[] = []): Promise<RunningGateway> {
    const settings: Record<string, string> = {
      ADGATE_DATA_DIR: this.dataDir(),
      ...BASE_ENV,
      ...this.kafkaEnv,
      ...env,
    }
    for (const name of unset) delete settings[name]
    const gw = await startGateway(this.brokers, settings)
    this.gateways.push(gw)
    this.rss.watch(gw.process.pid)
    return gw
  }

  /** SIGKILL the gateways still running (after a failure), so their files can be removed. */
  async killGateways(): Promise<void> {
    for (const gw of this.gateways)
      if (gw.process.exitCode === null && gw.process.signalCode === null) await gw.stop('SIGKILL')
  }

  /** Kill what is still running, stop and give up the broker, remove data dirs. */
  async release(): Promise<void> {
    this.rss.stop()
    await this.killGateways()
    try {
      await this.broker.release()
    } finally {
      for (const d of this.dirs) rmSync(d, { recursive: true, force: true })
    }
  }
}

/** A unique run prefix for event ids: `<scenario>-<time>`. */
export function runId(scenario: string): string {
  return `${scenario}-${Date.now().toString(36)}`
}

/** What a timed-out wait of a scenario prints: its times, the load's outcomes so far, the gateway's log tail. */
export function scenarioDetail(t: object, load: Load, gw: RunningGateway): () => string {
  return () => `${JSON.stringify({ t, outcomes: load.outcomes() })}\n${logTail(gw)}`
}

/** The gateway's log lines at warn and above (for failure messages). */
export function logTail(gw: RunningGateway, n = 15): string {
  return gw
    .logs()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{"level":30'))
    .slice(-n)
    .join('\n')
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * Run Kafka's own config tool (kafka.admin.ConfigCommand, from the broker jars) against the
 * broker: e.g. client quotas to throttle producers. Asynchronous, so load keeps running meanwhile.
 */
export function kafkaConfigs(brokers: string[], args: string[]): Promise<string> {
  const classpath = join(repoRoot, 'ops', 'kafka', 'target', 'libs', '*')
  return runCommand(
    'java',
    [
      '-Xmx256m',
      '-cp',
      classpath,
      'kafka.admin.ConfigCommand',
      '--bootstrap-server',
      brokers.join(','),
      ...args,
    ],
    `kafka-configs ${args.join(' ')}`,
  )
}

/**
 * One rig for the tests of a describe block: acquired before them, released after them. Returns
 * the function that gives it to the block's hooks and tests.
 */
export function rigPerBlock(): () => Rig {
  let rig: Rig | undefined
  beforeAll(async () => {
    rig = await Rig.acquire()
  }, 120_000)
  afterAll(async () => {
    await rig?.release()
  }, 60_000)
  return () => rig!
}
