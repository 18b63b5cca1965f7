import uWS from 'uWebSockets.js'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin } from '@platformatic/kafka'
import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import { nativeStatus, setNativeEnabled } from '../decoders/transcode.js'
import { BatchSink } from '../kafka/batch-sink.js'
import { describeKafkaSecurity, kafkaClientOptions, kafkaConnectionOptions } from '../kafka/client-options.js'
import { ALL_TOPICS, ensureTopics, topicSettings } from '../kafka/topics.js'
import { adoptRegistryIds } from '../registry/subjects.js'
import { Replayer } from '../spool/replayer.js'
import { Spool } from '../spool/spool.js'
import { LoopLoad } from '../workers/loop-load.js'
import { DecodePool, INLINE_MAX_LOOP_CPU, type WarmUpBody } from '../workers/pool.js'
import { registerRoutes } from './app.js'
import { Authenticator } from './auth.js'
import { Delivery } from './delivery.js'
import { startGuard } from './http-guard.js'
import { IngestService } from './ingest.js'
import { createGatewayMetrics, observeTask } from './metrics.js'
import { GatewayQuality } from './quality.js'
import { RefusedWork } from './refused-work.js'

export interface Gateway {
  readonly port: number
  /** The local spool (null when ADGATE_SPOOL_MAX_BYTES=0); in embedded mode the correlator reads it. */
  readonly spool: Spool | null
  /** Graceful: stop accepting, finish in-flight requests, flush to Kafka or the spool, stop workers. */
  close(): Promise<void>
}

export interface GatewayOptions {
  /**
   * false: no metrics at all (no-op observations, nothing collected). Only bench/metrics.ts uses
   * it, to measure what the metrics cost; deliberately not a setting, metrics are always on.
   */
  readonly metrics?: boolean
  /**
   * Bodies every decode thread decodes at start before /readyz says ready (ADGATE_WARMUP_MS; the
   * CLI passes generator/warm-up-bodies.ts's). Unset: only Kafka is warmed.
   */
  readonly warmUp?: readonly WarmUpBody[]
}

/**
 * Start the gateway. `brokers` null is the embedded single-machine mode: no Kafka, every batch is
 * made durable in the spool and read from there by the in-process correlator.
 */
export async function startGateway(
  config: Config,
  logger: Logger,
  brokers: string[] | null,
  options: GatewayOptions = {},
): Promise<Gateway> {
  const metrics = createGatewayMetrics({ enabled: options.metrics !== false })
  const auth = new Authenticator(config.apiKeys, config.rateLimitRps)
  if (!auth.enabled) logger.warn('ADGATE_API_KEYS is unset: authentication is OFF, anyone can post events')
  // The decode threads get the validated setting as an option (the pool's `native`); this thread asks too.
  setNativeEnabled(config.native === '1')
  const native = nativeStatus()
  if (native.native) logger.info('JSON bodies: native transcoder (simdjson → Avro)')
  else
    logger.warn(
      { reason: native.reason },
      'JSON bodies: native transcoder NOT loaded, using the slower JS decoder (see native/ in the README)',
    )
  // Before anything is opened: a bad rules file stops the start naming the file, rule and field.
  const quality = new GatewayQuality(config, metrics, logger)
  logger.info(
    { file: quality.path, rules: quality.ruleCount },
    quality.path === null ? 'data-quality rules are off' : 'data-quality rules loaded',
  )

  if (brokers === null && config.spoolMaxBytes === 0) {
    throw new Error(
      'embedded mode (no KAFKA_BROKERS) keeps events in the spool: ADGATE_SPOOL_MAX_BYTES must not be 0',
    )
  }
  const spool =
    config.spoolMaxBytes > 0 ? await Spool.open(join(config.dataDir, 'spool'), config.spoolMaxBytes) : null
  if (spool && spool.entries > 0)
    logger.info(
      { entries: spool.entries, bytes: spool.bytes },
      'spool holds batches from before; replaying when Kafka answers',
    )
  // One measure of the event loop's load decides both what leaves it: lone bodies' decodes (the
  // pool) and big batch merges (the sink) stay on it while it is quiet.
  const loop = new LoopLoad(INLINE_MAX_LOOP_CPU)
  const loopQuiet = () => loop.quiet()
  const sink =
    brokers === null ? null : await connectKafka(config, logger, brokers, spool !== null, loopQuiet)
  const replayer = sink && spool ? new Replayer(spool, sink, logger) : null
  replayer?.start()

  // Before the decode threads start: they are handed the registry's ids.
  const schemaIds = await adoptRegistryIds(config, logger)
  const configured = defaultPartitions(config.topicPartitions)
  const pool = new DecodePool({
    workers: config.workers,
    maxBytes: config.maxBodyBytes,
    maxEvents: config.maxEvents,
    // Until Kafka's metadata is known (or without Kafka), topics have the configured partition count.
    partitions: () => ({ ...configured, ...sink?.partitionCounts() }),
    maxTaskBytes: config.batchBytes,
    lingerMs: config.lingerMs,
    taskTimeoutMs: config.decodeTimeoutMs,
    budgetMs: config.requestCpuMs,
    onTask: (result) => observeTask(metrics, result),
    rules: quality.channel.buffer,
    schemaIds,
    native: config.native === '1',
    inline: loopQuiet,
  })
  const delivery = new Delivery(sink, spool, config.spoolAfterMs)
  const refused = config.refusedCpuMsPerS > 0 ? new RefusedWork(config.refusedCpuMsPerS) : null
  const ingest = new IngestService(pool, delivery, metrics, logger, quality, refused)

  // With the strict-HTTP guard in front, uWS serves the guard on loopback and the guard owns TLS.
  const strict = config.strictHttp === 'on'
  const app =
    config.tlsCert && !strict
      ? uWS.SSLApp({ cert_file_name: config.tlsCert, key_file_name: config.tlsKey! })
      : uWS.App()
  if (config.tlsCert) readFileSync(config.tlsCert) // fail loudly at start-up on an unreadable file
  const warmUpStarted = performance.now()
  let warmUpEnded: number | null = null
  // Declaration mirrored in test/support/fake-gateway.ts: the same parts, with fakes for the pool, sink and spool.
  const routes = registerRoutes(app, {
    config,
    logger,
    metrics,
    auth,
    ingest,
    pool,
    delivery,
    quality,
    sink,
    spool,
    replayer,
    warmUpSeconds: () => ((warmUpEnded ?? performance.now()) - warmUpStarted) / 1000,
  })

  // Behind the guard, uWS listens on a unix socket in a directory only this user may open: cheaper
  // than a loopback TCP hop (a tiny request's hop 0.65x the CPU, bench/strict-http.ts), and no other
  // local user can reach uWS around the guard.
  const upstreamDir = strict ? mkdtempSync(join(tmpdir(), 'adgate-')) : null
  const upstreamPath = upstreamDir === null ? null : join(upstreamDir, 'uws.sock')
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    const listening = (socket: uWS.us_listen_socket | false) =>
      socket
        ? resolve(socket)
        : reject(new Error(`cannot listen on ${upstreamPath ?? `${config.host}:${config.port}`}`))
    if (upstreamPath === null) app.listen(config.host, config.port, listening)
    else app.listen_unix(listening, upstreamPath)
  })
  const guard = upstreamPath
    ? await startGuard(config.host, config.port, {
        upstreamPath,
        maxHeaderBytes: config.maxHeaderBytes,
        maxBodyBytes: config.maxBodyBytes,
        bodyTimeoutMs: config.bodyTimeoutMs,
        ...(config.tlsCert ? { tls: { cert: config.tlsCert, key: config.tlsKey! } } : {}),
        onRefused: (status) => metrics.series.answered('(http)', status).inc(),
      })
    : null
  const port = guard?.port ?? uWS.us_socket_local_port(listenSocket)
  logger.info(
    {
      port,
      host: config.host,
      mode: brokers === null ? 'embedded' : 'kafka',
      brokers,
      spool: spool ? join(config.dataDir, 'spool') : null,
      workers: config.workers,
      tls: Boolean(config.tlsCert),
      strictHttp: strict,
      upstream: upstreamPath,
    },
    'gateway listening',
  )

  // Listening, and not ready until warm: /readyz answers 503 meanwhile; requests are served.
  if (config.warmUpMs > 0) {
    ingest.warming = true
    void warmUp(config, logger, pool, sink, options.warmUp ?? []).finally(() => {
      warmUpEnded = performance.now()
      ingest.warming = false
    })
  } else warmUpEnded = warmUpStarted

  let closing: Promise<void> | null = null
  return {
    port,
    spool,
    close: () => {
      closing ??= (async () => {
        logger.info({ inFlight: routes.inFlight() }, 'draining')
        ingest.startDraining()
        const guardClosed = guard?.close()
        uWS.us_listen_socket_close(listenSocket)
        if (upstreamDir !== null) rmSync(upstreamDir, { recursive: true, force: true })
        const deadline = Date.now() + config.shutdownTimeoutMs
        while (routes.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        routes.close()
        await Promise.all([guardClosed, guard?.close(true)])
        const spooled = await replayer?.stop(deadline)
        if (spooled) logger.warn({ entries: spooled }, 'spooled batches stay on disk until the next start')
        await sink?.close()
        await pool.close()
        quality.close()
        await spool?.close()
        logger.info({ unanswered: routes.inFlight() }, 'gateway stopped')
      })()
      return closing
    },
  }
}

/**
 * A fresh gateway at 40k events/s was overloaded for its first 3–4 s (README, "Load tests"): every
 * decode thread's JIT cold, the probation lane's thread not started, no producer id or connection to
 * the partition leaders yet. Before it says ready, within ADGATE_WARMUP_MS: the decode threads
 * decode `bodies` (thrown away: nothing reaches Kafka or the spool), and, when Kafka answers, the
 * producer id and a connection to every leader are made. Never throws.
 */
async function warmUp(
  config: Config,
  logger: Logger,
  pool: DecodePool,
  sink: BatchSink | null,
  bodies: readonly WarmUpBody[],
): Promise<void> {
  const t0 = performance.now()
  const deadline = Date.now() + config.warmUpMs
  // Kafka down at start is no reason to stay unready: the spool takes events (delivery.ts).
  const kafka = sink?.ready
    ? sink.preconnect(deadline).then(
        () => true,
        (err: unknown) => {
          logger.warn({ err }, 'warm-up: Kafka connections not made; the first sends make them')
          return false
        },
      )
    : false
  try {
    const [decode, connected] = await Promise.all([pool.warmUp(bodies, deadline), kafka])
    logger.info(
      {
        ms: Math.round(performance.now() - t0),
        rounds: decode.rounds,
        complete: decode.complete,
        kafka: connected,
      },
      decode.complete ? 'warmed up: ready' : 'warm-up cut short by ADGATE_WARMUP_MS: ready',
    )
  } catch (err) {
    // Closed while warming, or a decode thread failed (the pool replaces it): ready as it is.
    logger.warn({ err, ms: Math.round(performance.now() - t0) }, 'warm-up ended early')
  }
}

function defaultPartitions(n: number): Record<string, number> {
  return Object.fromEntries(ALL_TOPICS.map((t) => [t, n]))
}

/**
 * Create the topics and load metadata. With a spool, an unreachable Kafka does not stop start-up:
 * the gateway spools and keeps trying in the background.
 */
async function connectKafka(
  config: Config,
  logger: Logger,
  brokers: string[],
  canWait: boolean,
  loopQuiet: () => boolean,
): Promise<BatchSink> {
  logger.info({ brokers, security: describeKafkaSecurity(config) }, 'Kafka producer')
  const sink = new BatchSink({
    brokers,
    clientId: config.kafkaClientId,
    topics: ALL_TOPICS,
    connection: kafkaConnectionOptions(config, brokers),
    ackTimeoutMs: config.ackTimeoutMs,
    maxInFlight: config.maxInFlight,
    maxPendingBytes: config.maxPendingBytes,
    lingerMs: config.produceLingerMs,
    maxBatchBytes: config.produceBatchBytes,
    mergeOnLoop: loopQuiet,
    logger,
  })
  const attempt = async () => {
    const admin = new Admin(kafkaClientOptions(config, brokers))
    try {
      await ensureTopics(admin, ALL_TOPICS, topicSettings(config), logger)
    } finally {
      await admin.close()
    }
    await sink.connect()
  }
  try {
    await attempt()
  } catch (err) {
    if (!canWait) throw err
    // Wrong credentials, certificates or ACLs are no outage: the sink keeps /readyz false and
    // nothing is acknowledged from the spool until they are fixed.
    if (await sink.observeFailure(err)) logger.warn('Kafka refuses adgate at start-up; retrying')
    else logger.warn({ err }, 'Kafka is unreachable at start-up; spooling until it answers')
    const retry = setInterval(() => {
      attempt().then(
        () => {
          clearInterval(retry)
          logger.info('Kafka is reachable; the spool drains into it')
        },
        () => {},
      )
    }, 2000)
    retry.unref()
  }
  return sink
}
