import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import { SpoolSource } from '../correlator/spool-source.js'
import { startGateway } from '../gateway/server.js'
import { warmUpBodies } from '../generator/warm-up-bodies.js'
import { kafkaSourceFor, startCorrelator } from './correlator.js'
import { untilSignal } from './until-signal.js'

/**
 * `adgate all`: the gateway and the correlator in one process. With KAFKA_BROKERS unset this is
 * the embedded single-machine mode: the gateway makes events durable in the local spool and the
 * correlator reads them from there into DuckDB. With it set, both use Kafka.
 */
export async function runAll(config: Config, logger: Logger): Promise<number> {
  const brokers = config.kafkaBrokers ?? null
  const gateway = await startGateway(config, logger.child({ component: 'gateway' }), brokers, {
    warmUp: warmUpBodies(),
  })
  const correlatorLogger = logger.child({ component: 'correlator' })
  const source =
    brokers === null
      ? new SpoolSource(gateway.spool!, config.topicPartitions, (err) =>
          correlatorLogger.error({ err }, 'reading the spool failed; retrying'),
        )
      : kafkaSourceFor(config, correlatorLogger, brokers)
  const rekey = brokers !== null && config.correlatorRekey === 'kafka' ? brokers : null
  const correlator = await startCorrelator(config, correlatorLogger, source, rekey)
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host
  logger.info(
    {
      mode:
        brokers === null ? 'embedded (no Kafka: the local spool carries events to the correlator)' : 'kafka',
      post: `http://${host}:${gateway.port}/v1/impressions`,
      stats: `http://${host}:${correlator.port}/v1/campaigns/<id>/stats`,
      storage: correlator.storage.kind,
    },
    'adgate is running: post events, then `npx adgate query --json`',
  )
  // The correlator stops first: what it has not read stays durable in the spool or Kafka.
  await untilSignal(logger, async () => {
    await correlator.close()
    await gateway.close()
  })
  return 0
}
