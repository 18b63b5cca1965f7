import uWS from 'uWebSockets.js'
import { readFileSync } from 'node:fs'
import kafkajs from 'kafkajs'
import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import { BatchSink } from '../kafka/batch-sink.js'
import { ALL_TOPICS, ensureTopics } from '../kafka/topics.js'
import { DecodePool } from '../workers/pool.js'
import { Authenticator } from './auth.js'
import { EventRoutes } from './http.js'
import { IngestService } from './ingest.js'
import { createGatewayMetrics } from './metrics.js'
import { requestIdFrom } from './request-id.js'
import { errorReply, jsonReply, writeReply } from './responses.js'
import { registerStream } from './stream.js'

export interface Gateway {
  readonly port: number
  /** Graceful: stop accepting, finish in-flight requests, flush Kafka, stop workers. */
  close(): Promise<void>
}

export async function startGateway(config: Config, logger: Logger, brokers: string[]): Promise<Gateway> {
  const metrics = createGatewayMetrics()
  const auth = new Authenticator(config.apiKeys, config.rateLimitRps)
  if (!auth.enabled) logger.warn('ADGATE_API_KEYS is unset: authentication is OFF, anyone can post events')

  // kafkajs' admin creates missing topics; the hot path writes through BatchSink.
  const admin = new kafkajs.Kafka({
    brokers,
    clientId: config.kafkaClientId,
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin()
  await admin.connect()
  await ensureTopics(admin, 4)
  await admin.disconnect()
  const sink = new BatchSink({
    brokers,
    clientId: config.kafkaClientId,
    topics: ALL_TOPICS,
    ackTimeoutMs: config.ackTimeoutMs,
    maxInFlight: config.maxInFlight,
    maxPendingBytes: config.maxPendingBytes,
    logger,
  })
  await sink.connect()

  const pool = new DecodePool({
    workers: config.workers,
    maxBytes: config.maxBodyBytes,
    maxEvents: config.maxEvents,
    partitions: () => sink.partitionCounts(),
    maxTaskBytes: config.batchBytes,
    lingerMs: config.lingerMs,
    taskTimeoutMs: config.decodeTimeoutMs,
  })
  const ingest = new IngestService(pool, sink, metrics, logger)
  const deps = { config, auth, ingest, metrics, logger }

  const app = config.tlsCert
    ? uWS.SSLApp({ cert_file_name: config.tlsCert, key_file_name: config.tlsKey! })
    : uWS.App()
  if (config.tlsCert) readFileSync(config.tlsCert) // fail loudly at start-up on an unreadable file
  const routes = new EventRoutes(deps)
  routes.register(app)
  registerStream(app, deps)

  app.get('/healthz', (res) => writeReply(res, jsonReply(200, { status: 'ok' })))
  app.get('/readyz', (res) => {
    const ready = ingest.ready
    writeReply(
      res,
      jsonReply(ready ? 200 : 503, { ready, kafka: sink.ready, pending_bytes: sink.bufferedBytes }),
    )
  })
  app.get('/metrics', (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    metrics.kafkaPendingBytes.set(sink.bufferedBytes)
    metrics.kafkaErrors.set(sink.stats.errors)
    metrics.workerUtilization.set(pool.utilization)
    metrics.workerQueue.set(pool.queueSize)
    void metrics.registry.metrics().then((text) => {
      if (aborted) return
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('Content-Type', metrics.registry.contentType).end(text)
      })
    })
  })
  if (config.faultInjection === 'on') {
    logger.warn(
      'ADGATE_FAULT_INJECTION is on: POST /_faults/worker and /_faults/kafka break the next task or delivery',
    )
    app.post('/_faults/worker', (res, req) => {
      const mode = new URLSearchParams(req.getQuery() ?? '').get('mode')
      if (mode !== 'crash' && mode !== 'hang')
        return void writeReply(res, jsonReply(400, { error: 'mode=crash|hang' }))
      pool.injectFault(mode)
      writeReply(res, jsonReply(200, { armed: mode }))
    })
    app.post('/_faults/kafka', (res) => {
      sink.injectFailure()
      writeReply(res, jsonReply(200, { armed: 'kafka' }))
    })
  }
  app.any('/*', (res, req) => {
    const id = requestIdFrom(req.getHeader('x-request-id'))
    writeReply(
      res,
      errorReply('NOT_FOUND', `no route ${req.getMethod().toUpperCase()} ${req.getUrl()}`, id),
      id,
    )
  })

  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (socket) =>
      socket ? resolve(socket) : reject(new Error(`cannot listen on ${config.host}:${config.port}`)),
    )
  })
  const port = uWS.us_socket_local_port(listenSocket)
  logger.info(
    { port, host: config.host, brokers, workers: config.workers, tls: Boolean(config.tlsCert) },
    'gateway listening',
  )

  let closing: Promise<void> | null = null
  return {
    port,
    close: () => {
      closing ??= (async () => {
        logger.info({ inFlight: routes.inFlight }, 'draining')
        ingest.startDraining()
        uWS.us_listen_socket_close(listenSocket)
        const deadline = Date.now() + config.shutdownTimeoutMs
        while (routes.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        routes.close()
        await sink.close()
        await pool.close()
        logger.info({ unanswered: routes.inFlight }, 'gateway stopped')
      })()
      return closing
    },
  }
}
