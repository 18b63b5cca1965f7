// Vitest globalSetup: runs once per `vitest run`, before any test file.
// The broker is left running on teardown so the next run (or a dev loop) reuses it;
// `npm run kafka:stop` stops it, and .ci/run stops it when CI is done.
import type { TestProject } from 'vitest/node'
import { ensureKafka } from './support/kafka.js'
import { ensurePostgres } from './support/postgres.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** bootstrap brokers of the local Kafka; empty when Kafka is unavailable (tests skip) */
    kafkaBrokers: string[]
    /** a database of a throw-away role (may create more); empty when PostgreSQL is unavailable */
    postgresUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const kafka = await ensureKafka()
  project.provide('kafkaBrokers', kafka?.brokers ?? [])
  const postgres = await ensurePostgres()
  project.provide('postgresUrl', postgres?.url ?? '')
  return () => {
    // The broker is kept for reuse; the test role and its databases are dropped.
    postgres?.teardown()
  }
}
