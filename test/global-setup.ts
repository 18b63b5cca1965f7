// Vitest globalSetup: runs once per `vitest run`, before any test file.
// The broker is left running on teardown so the next run (or a dev loop) reuses it;
// `npm run kafka:stop` stops it, and .ci/run stops it when CI is done.
import type { TestProject } from 'vitest/node'
import { ensureKafka } from './support/kafka.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** bootstrap brokers of the local Kafka; empty when Kafka is unavailable (tests skip) */
    kafkaBrokers: string[]
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const kafka = await ensureKafka()
  project.provide('kafkaBrokers', kafka?.brokers ?? [])
  return () => {
    // Deliberately empty: keep the broker for reuse.
  }
}
