import type { TemplatedApp } from 'uWebSockets.js'
import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import { type BatchSink, isKafkaFault, KAFKA_FAULTS } from '../kafka/batch-sink.js'
import { registerProducerMetrics } from '../kafka/metrics.js'
import { registerSpoolMetrics } from '../spool/metrics.js'
import type { Replayer } from '../spool/replayer.js'
import type { Spool } from '../spool/spool.js'
import type { DecodePool } from '../workers/pool.js'
import type { Authenticator } from './auth.js'
import { ClientAddress } from './client-address.js'
import type { Delivery } from './delivery.js'
import { EventRoutes } from './http.js'
import type { IngestService } from './ingest.js'
import { type GatewayMetrics, registerGatewayState } from './metrics.js'
import type { GatewayQuality } from './quality.js'
import { requestIdFrom } from './request-id.js'
import { errorReply, jsonReply, writeReply } from './responses.js'
import { registerStream } from './stream.js'
import { TrackerRoutes } from './trackers.js'

/** Everything the routes answer from: what startGateway builds before it listens (fakes in unit tests). */
export interface GatewayParts {
  readonly config: Config
  readonly logger: Logger
  readonly metrics: GatewayMetrics
  readonly auth: Authenticator
  readonly ingest: IngestService
  readonly pool: DecodePool
  readonly delivery: Delivery
  readonly quality: GatewayQuality
  /** null: embedded mode (no Kafka). */
  readonly sink: BatchSink | null
  readonly spool: Spool | null
  readonly replayer: Replayer | null
  /** How long the start-up warm-up took, or has run so far (unset: none, 0). */
  readonly warmUpSeconds?: () => number
}

export interface Routes {
  /** Requests received and not yet answered (graceful shutdown waits for these). */
  inFlight(): number
  close(): void
}

/**
 * Every route of the gateway on a uWS app: events, trackers, the WebSocket stream, health,
 * metrics, the fault hooks when enabled, and 404 for the rest. The app is a real uWS app in
 * startGateway and a fake one in test/support/inject.ts.
 */
export function registerRoutes(app: TemplatedApp, parts: GatewayParts): Routes {
  const { config, logger, metrics, ingest, pool, delivery, sink, spool, replayer } = parts
  const address = new ClientAddress(config.trustedProxies ?? [], config.strictHttp === 'on')
  const routes = new EventRoutes({ ...parts, address })
  routes.register(app)
  const trackers = new TrackerRoutes({ ...parts, address })
  trackers.register(app)
  registerStream(app, { ...parts, address })

  app.get('/healthz', (res) => writeReply(res, jsonReply(200, { status: 'ok' })))
  app.get('/readyz', (res) => {
    const ready = ingest.ready
    const body = {
      ready,
      warming: ingest.warming,
      kafka: sink?.ready ?? false,
      // Credentials, certificates or ACLs Kafka refuses: names the setting to fix (never a secret).
      kafka_error: sink?.securityFailure ?? null,
      pending_bytes: sink?.bufferedBytes ?? 0,
      spool: spool && {
        bytes: spool.bytes,
        max_bytes: spool.maxBytes,
        entries: spool.entries,
        full: spool.full,
      },
    }
    writeReply(res, jsonReply(ready ? 200 : 503, body))
  })
  if (metrics.enabled) {
    // Read by prom-client at scrape time from their owners.
    registerGatewayState(metrics.registry, {
      workers: config.workers,
      queueSize: () => pool.queueSize,
      inFlight: () => routes.inFlight,
      ready: () => ingest.ready,
      warmUpSeconds: parts.warmUpSeconds ?? (() => 0),
      delivered: delivery,
    })
    registerSpoolMetrics(metrics.registry, config.spoolMaxBytes, spool, replayer)
    if (sink) registerProducerMetrics(metrics.registry, sink, () => delivery.possibleDuplicates)
  }
  app.get('/metrics', (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
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
    app.post('/_faults/kafka', (res, req) => {
      const mode = new URLSearchParams(req.getQuery() ?? '').get('mode') ?? 'timeout'
      if (!isKafkaFault(mode))
        return void writeReply(res, jsonReply(400, { error: `mode=${KAFKA_FAULTS.join('|')}` }))
      sink?.injectFailure(mode)
      writeReply(res, jsonReply(200, { armed: 'kafka', mode }))
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

  return {
    inFlight: () => routes.inFlight + trackers.inFlight,
    close: () => routes.close(),
  }
}
