// Makes sure a local Kafka broker is reachable for the integration tests.
// The broker itself is managed by scripts/kafka.mjs (KRaft, one node, 127.0.0.1).
import { kafkaScriptSync } from '../../bench/lib/broker.js'
import { present, warnLoudly } from './services.js'

function runKafkaScript(command: 'start' | 'status', inheritOutput: boolean): boolean {
  return kafkaScriptSync(command, {}, inheritOutput ? 'inherit' : 'ignore')
}

/**
 * Returns the broker list when a broker answers (starting one if needed), or null when Kafka
 * cannot run on this machine (no java) so Kafka tests can skip. In CI that is an error instead.
 */
export async function ensureKafka(): Promise<{ brokers: string[] } | null> {
  const brokers = [`127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`]
  if (runKafkaScript('status', false)) return { brokers }

  if (!present('java')) {
    const reason = 'java is not on PATH, so no local Kafka broker can be started'
    if (process.env.CI === 'true') {
      throw new Error(`${reason}. Kafka tests must run in CI: install openjdk-17-jre-headless (see .ci/run).`)
    }
    warnLoudly(`${reason}: Kafka integration tests will be SKIPPED.`)
    return null
  }

  if (!runKafkaScript('start', true)) {
    throw new Error('scripts/kafka.mjs start failed; see the output above and data/kafka/broker.log')
  }
  return { brokers }
}
