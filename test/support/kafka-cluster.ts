// The secured three-node cluster (scripts/kafka-cluster.mjs) for the tests that need TLS, SASL,
// ACLs or replication: started by test/global-setup.ts, described by the cluster.json it writes.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Admin, type SASLMechanismValue } from '@platformatic/kafka'
import { inject } from 'vitest'
import { runCommand } from './command.js'
import { present, warnLoudly } from './services.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const clusterScript = path.join(repoRoot, 'scripts/kafka-cluster.mjs')
const NODES = 3
const BROKERS_TIMEOUT_MS = 60_000

export interface KafkaClusterUser {
  username: string
  password: string
  /** the password alone in a file (KAFKA_SASL_PASSWORD_FILE) */
  passwordFile: string
}

/** cluster.json as the script writes it. */
export interface KafkaCluster {
  /** SASL_SSL listeners (SCRAM-SHA-512/256, PLAIN, OAUTHBEARER with unsigned tokens) */
  brokers: string[]
  /** SSL listeners requiring a client certificate (mTLS) */
  mtlsBrokers: string[]
  saslMechanisms: string[]
  caFile: string
  /** CN=adgate, which the brokers map to the user adgate */
  clientCertFile: string
  clientKeyFile: string
  /** topics, groups and transactional ids the adgate user may use start with this */
  aclPrefix: string
  users: { admin: KafkaClusterUser; adgate: KafkaClusterUser; noacl: KafkaClusterUser }
  nodes: { id: number; broker: string; pidFile: string; log: string }[]
}

export type ClusterUserName = keyof KafkaCluster['users']

function clusterInfoFile(): string {
  return path.resolve(repoRoot, process.env.ADGATE_DATA_DIR ?? 'data', 'kafka-cluster', 'cluster.json')
}

/**
 * For a test file that needs the secured cluster: the one the global setup started, or null (the
 * file's tests then skip, loudly) when it could not start outside CI. In CI a missing cluster
 * fails the file.
 */
export function requiredCluster(): KafkaCluster | null {
  const cluster = inject('kafkaCluster')
  if (!cluster && process.env.CI === 'true')
    throw new Error(
      'kafkaCluster is null in CI: global setup should have started the secured cluster or failed',
    )
  return cluster
}

export function readKafkaCluster(): KafkaCluster {
  return JSON.parse(fs.readFileSync(clusterInfoFile(), 'utf8')) as KafkaCluster
}

/** The gateway's (or correlator's) settings for this cluster: SASL_SSL with SCRAM-SHA-512 as `user`. */
export function clusterEnv(cluster: KafkaCluster, user: ClusterUserName = 'adgate'): Record<string, string> {
  return {
    KAFKA_BROKERS: cluster.brokers.join(','),
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    KAFKA_SASL_USERNAME: cluster.users[user].username,
    KAFKA_SASL_PASSWORD_FILE: cluster.users[user].passwordFile,
    KAFKA_SSL_CA_FILE: cluster.caFile,
  }
}

/** @platformatic/kafka connection options: TLS verified against the cluster CA, SASL as `user`. */
export function clusterClientOptions(
  cluster: KafkaCluster,
  user: ClusterUserName = 'adgate',
  mechanism: SASLMechanismValue = 'SCRAM-SHA-512',
) {
  const { username, password } = cluster.users[user]
  return {
    bootstrapBrokers: cluster.brokers,
    tls: { ca: fs.readFileSync(cluster.caFile) },
    sasl: { mechanism, username, password },
  }
}

/** Runs scripts/kafka-cluster.mjs to its end: resolves with its output, rejects with it when it fails. */
export function runClusterScript(args: readonly string[]): Promise<string> {
  return runCommand(process.execPath, [clusterScript, ...args], `kafka-cluster.mjs ${args.join(' ')}`)
}

/** A node answers before it has registered with the controllers: wait until metadata lists all three. */
async function waitForAllBrokers(cluster: KafkaCluster): Promise<void> {
  const admin = new Admin({ clientId: 'adgate-test-setup', ...clusterClientOptions(cluster, 'admin') })
  const deadline = Date.now() + BROKERS_TIMEOUT_MS
  let seen = 0
  try {
    while (Date.now() < deadline) {
      seen = await admin
        .metadata({ forceUpdate: true })
        .then((m) => m.brokers.size)
        .catch(() => 0)
      if (seen === NODES) return
      await new Promise((r) => setTimeout(r, 500))
    }
  } finally {
    await admin.close()
  }
  throw new Error(
    `the secured cluster lists ${seen} of ${NODES} brokers after ${BROKERS_TIMEOUT_MS / 1000} s`,
  )
}

/**
 * Starts the secured cluster (or finds it running) and returns its coordinates. Without java it
 * returns null so its tests skip, loudly; in CI that, or a failed start, is an error.
 */
export async function ensureKafkaCluster(): Promise<KafkaCluster | null> {
  const ci = process.env.CI === 'true'
  if (!present('java')) {
    const reason = 'java is not on PATH, so the secured 3-node Kafka cluster cannot be started'
    if (ci) throw new Error(`${reason}. The secured-cluster tests must run in CI (see .ci/run).`)
    warnLoudly(`${reason}: secured-cluster tests (TLS, SASL, ACLs, replication faults) will be SKIPPED.`)
    return null
  }
  // Its output (certificates made, nodes started, or why not) is shown whether it succeeds or not.
  const start = await runClusterScript(['start']).then(
    (output) => ({ ok: true, output }),
    (err: Error) => ({ ok: false, output: `${err.message}\n` }),
  )
  process.stdout.write(start.output)
  if (!start.ok) {
    const reason = 'scripts/kafka-cluster.mjs start failed (see the output above)'
    if (ci) throw new Error(reason)
    // Locally the usual cause is another checkout's cluster on the same ports.
    warnLoudly(
      `${reason}: secured-cluster tests will be SKIPPED. Another checkout's cluster? Set KAFKA_CLUSTER_BASE_PORT.`,
    )
    return null
  }
  const cluster = readKafkaCluster()
  await waitForAllBrokers(cluster)
  return cluster
}
