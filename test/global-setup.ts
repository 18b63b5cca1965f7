// Vitest globalSetup: runs once per `vitest run`, before any test file.
// The brokers are left running on teardown so the next run (or a dev loop) reuses them;
// `npm run kafka:stop` / `npm run kafka-cluster:stop` stop them, and .ci/run stops both when CI is done.
import type { TestProject } from 'vitest/node'
import { ensureKafka } from './support/kafka.js'
import { ensureKafkaCluster, type KafkaCluster } from './support/kafka-cluster.js'
import { ensurePostgres } from './support/postgres.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** bootstrap brokers of the local Kafka; empty when Kafka is unavailable (tests skip) */
    kafkaBrokers: string[]
    /** the secured 3-node cluster (TLS, SASL, ACLs, RF 3); null when it cannot run here (tests skip) */
    kafkaCluster: KafkaCluster | null
    /** a database of a throw-away role (may create more); empty when PostgreSQL is unavailable */
    postgresUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  // The cluster's three JVMs take the longest: start them first, alongside the rest.
  const cluster = ensureKafkaCluster()
  const kafka = await ensureKafka()
  project.provide('kafkaBrokers', kafka?.brokers ?? [])
  const postgres = await ensurePostgres()
  project.provide('postgresUrl', postgres?.url ?? '')
  try {
    project.provide('kafkaCluster', await cluster)
  } catch (err) {
    postgres?.teardown()
    throw err
  }
  return () => {
    // The brokers are kept for reuse; the test role and its databases are dropped.
    postgres?.teardown()
  }
}
