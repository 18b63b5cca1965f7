import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import { Correlator } from '../correlator/correlator.js'
import { startCorrelatorHttp } from '../correlator/http.js'
import { KafkaRekeyProducer, KafkaSource } from '../correlator/kafka-source.js'
import { createCorrelatorMetrics } from '../correlator/metrics.js'
import { rulesFrom } from '../correlator/rules.js'
import type { EventSource } from '../correlator/source.js'
import type { Storage } from '../correlator/storage.js'
import { inputTopics } from '../correlator/topics.js'
import { withWriterSchemas } from '../correlator/writer-schemas-source.js'
import { assignSchemaIds } from '../events/schemas.js'
import { kafkaConnectionOptions } from '../kafka/client-options.js'
import { topicSettings } from '../kafka/topics.js'
import { registryClientFor, syncSubjects, WriterSchemas } from '../registry/subjects.js'
import { openStorage, storageTarget } from '../storage/open.js'
import { UsageError } from './gen.js'
import { untilSignal } from './until-signal.js'

export const CORRELATOR_HELP = `adgate correlator — joins, attribution and campaign aggregates, to storage

Usage: adgate correlator

Reads adgate.{bids,impressions,clicks,conversions} from KAFKA_BROKERS as consumer group
ADGATE_CORRELATOR_GROUP (run several to split the partitions), writes ADGATE_STORAGE
(duckdb, postgres://…, parquet) and serves GET /v1/campaigns/:id/stats, /metrics and /healthz
on ADGATE_CORRELATOR_PORT. Windows, grace and IVT rules: ADGATE_*_WINDOW, ADGATE_GRACE,
ADGATE_MIN_CLICK_DELAY, ADGATE_BOT_USER_AGENTS (see adgate --help).
`

export interface RunningCorrelator {
  correlator: Correlator
  storage: Storage
  port: number
  /** Settles when the source ends (a finite source) or the correlator fails. */
  done: Promise<void>
  close(): Promise<void>
}

/**
 * Starts a correlator over `source` (Kafka here; the embedded mode passes its spool source) with
 * its storage and HTTP API. `rekeyBrokers`: re-key through Kafka (several instances) or, when
 * null, in-process.
 */
export async function startCorrelator(
  config: Config,
  logger: Logger,
  source: EventSource,
  rekeyBrokers: string[] | null,
): Promise<RunningCorrelator> {
  // With a schema registry: its ids for adgate's schemas, and other writers' schemas fetched by id.
  const registry = registryClientFor(config)
  if (registry !== null) {
    assignSchemaIds(await syncSubjects(registry))
    source = withWriterSchemas(source, new WriterSchemas(registry))
  }
  const storage = await openStorage(storageTarget(config.storage, config.dataDir), {
    intervalMs: config.checkpointInterval,
    memoryLimit: config.duckdbMemoryLimit,
    threads: config.duckdbThreads,
  })
  const metrics = createCorrelatorMetrics()
  const producer = rekeyBrokers
    ? new KafkaRekeyProducer(rekeyBrokers, config.kafkaClientId, kafkaConnectionOptions(config, rekeyBrokers))
    : undefined
  const partitions = await source.partitions()
  const correlator = new Correlator(
    {
      rules: rulesFrom(config),
      storage,
      source,
      producer,
      checkpointMs: config.checkpointInterval,
      idleMs: config.idleTimeout,
      // Group commit: one storage write per 20k records or 200 ms, whichever comes first.
      writeEveryRecords: 20_000,
      lingerMs: 200,
      onBatch: (s) => metrics.observe(s),
      rawEvents: config.rawTables === 'on',
      ...(config.anomalies === 'on'
        ? { anomalies: { bucketMs: config.anomalyBucket, closeAfterMs: 2 * config.anomalyBucket } }
        : {}),
      onWarn: (msg, err) => logger.warn({ err }, msg),
      onGap: (gap) => {
        metrics.gap(gap.records)
        logger.warn(
          gap,
          'correlator: records deleted by Kafka retention before they were read (records: never counted; stateOnly: counted, join state lost); reading on after them',
        )
      },
    },
    partitions,
  )
  metrics.lagFrom(() => correlator.lag())
  const http = await startCorrelatorHttp(
    storage,
    metrics.registry,
    config.host,
    config.correlatorPort,
    logger,
  )
  logger.info(
    { port: http.port, storage: storage.kind, partitions, rekey: producer ? 'kafka' : 'local' },
    'correlator listening',
  )
  const running = correlator.start()
  running.catch((err: unknown) => logger.error({ err }, 'correlator stopped on an error'))
  return {
    correlator,
    storage,
    port: http.port,
    done: running,
    async close() {
      await correlator.stop()
      await new Promise<void>((resolve) => http.server.close(() => resolve()))
      await producer?.close()
      await storage.close()
      registry?.close()
    },
  }
}

/** The Kafka consumer group a correlator reads the event topics through. */
export function kafkaSourceFor(config: Config, logger: Logger, brokers: string[]): KafkaSource {
  return new KafkaSource({
    brokers,
    clientId: `${config.kafkaClientId}-correlator`,
    groupId: config.correlatorGroup,
    topics: inputTopics(config.correlatorRekey === 'kafka'),
    createPartitions: config.topicPartitions,
    connection: kafkaConnectionOptions(config, brokers),
    topicSettings: topicSettings(config),
    onError: (err, msg) => logger.warn({ err }, msg),
  })
}

export async function runCorrelatorCommand(config: Config, logger: Logger): Promise<number> {
  if (!config.kafkaBrokers)
    throw new UsageError('KAFKA_BROKERS is required for `adgate correlator` (`adgate all` runs it embedded)')
  const source = kafkaSourceFor(config, logger, config.kafkaBrokers)
  const rekey = config.correlatorRekey === 'kafka' ? config.kafkaBrokers : null
  const running = await startCorrelator(config, logger, source, rekey)
  await untilSignal(logger, () => running.close())
  return 0
}
