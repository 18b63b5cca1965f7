import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js'
import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import { type ContentEncoding, parseContentEncoding } from '../decoders/content-encoding.js'
import { ACCEPTED_CONTENT_TYPES, parseContentType } from '../decoders/content-type.js'
import type { Encoding } from '../decoders/result.js'
import { EVENT_INFO, EVENT_TYPES, type EventType } from '../events/catalog.js'
import type { ErrorCode } from '../events/errors.js'
import { authRefusal, rateRefusal } from './admission.js'
import { answer } from './answer.js'
import type { Authenticator, Principal } from './auth.js'
import { type BodyFailure, BodyReader } from './body-reader.js'
import type { ClientAddress } from './client-address.js'
import type { IngestService } from './ingest.js'
import type { GatewayMetrics } from './metrics.js'
import { clientOf } from './refused-work.js'
import { requestIdFrom } from './request-id.js'
import { errorReply, type Reply, writeReply } from './responses.js'

interface Admitted {
  readonly principal: Principal
  readonly encoding: Encoding
  readonly contentEncoding: ContentEncoding
  readonly declared: number | undefined
}

export interface HttpDeps {
  readonly config: Config
  readonly auth: Authenticator
  readonly ingest: IngestService
  readonly metrics: GatewayMetrics
  readonly logger: Logger
  readonly address: ClientAddress
}

/**
 * POST /v1/{bids,impressions,clicks,conversions}. Everything that can be refused from the headers
 * (key, rate, type, encoding, declared size, readiness) is refused before a byte of body is read.
 * Bodies that do not arrive within ADGATE_BODY_TIMEOUT_MS get 408 and the connection is closed.
 */
export class EventRoutes {
  /** Bodies being received, swept for slow clients. */
  private readonly reading = new Set<BodyReader>()
  private readonly sweeper: NodeJS.Timeout
  /** Requests received and not yet answered (graceful shutdown waits for these). */
  inFlight = 0

  constructor(private readonly deps: HttpDeps) {
    this.sweeper = setInterval(this.sweep, 250)
    this.sweeper.unref()
  }

  register(app: TemplatedApp): void {
    for (const type of EVENT_TYPES) {
      const path = `/v1/${EVENT_INFO[type].route}`
      app.post(path, (res, req) => this.handle(type, path, res, req))
      app.any(path, (res, req) => {
        const id = requestIdFrom(req.getHeader('x-request-id'))
        this.write(
          res,
          path,
          errorReply('METHOD_NOT_ALLOWED', `use POST on ${path}`, id, {}, { Allow: 'POST' }),
          id,
        )
      })
    }
  }

  private handle(type: EventType, route: string, res: HttpResponse, req: HttpRequest): void {
    // uWS: headers must be read now (req dies when this returns) and onAborted attached now.
    const requestId = requestIdFrom(req.getHeader('x-request-id'))
    const admitted = this.admit(type, req, requestId)
    const state = { aborted: false, reader: null as BodyReader | null }
    res.onAborted(() => {
      state.aborted = true
      state.reader?.fail('aborted')
    })
    if ('status' in admitted) {
      // The body is unread: close the connection rather than leave its bytes in the stream.
      this.write(res, route, { ...admitted, close: true }, requestId)
      return
    }
    const { principal, encoding, contentEncoding, declared } = admitted
    const { config, ingest, metrics } = this.deps
    const client = clientOf(this.deps.auth, principal, this.deps.address.of(res, req))
    this.inFlight++
    const onBody = (body: Buffer) => {
      this.reading.delete(reader)
      metrics.series.bodyBytes.observe(body.length)
      const work = ingest.ingest({
        body,
        type,
        encoding,
        contentEncoding,
        source: principal.name,
        client,
        requestId,
        ingestTime: reader.startedAt,
      })
      answer(work, route, reader.startedAt, requestId, this.deps).then((reply) => {
        try {
          if (!state.aborted) res.cork(() => this.write(res, route, reply, requestId))
        } finally {
          this.inFlight--
        }
      })
    }
    const onFailure = (why: BodyFailure) => {
      this.reading.delete(reader)
      this.inFlight--
      if (why === 'aborted' || state.aborted) return
      const reply =
        why === 'too-large'
          ? errorReply(
              'BODY_TOO_LARGE',
              `the body is over the limit of ${config.maxBodyBytes} bytes`,
              requestId,
            )
          : errorReply(
              'REQUEST_TIMEOUT',
              `the body did not arrive within ${config.bodyTimeoutMs} ms`,
              requestId,
            )
      res.cork(() => this.write(res, route, { ...reply, close: true }, requestId))
    }
    const reader = new BodyReader(res, declared, config.maxBodyBytes, onBody, onFailure)
    state.reader = reader
    this.reading.add(reader)
  }

  /** Everything that can be refused from the headers, before a byte of body is read. */
  private admit(type: EventType, req: HttpRequest, requestId: string): Admitted | Reply {
    const { config, auth, ingest } = this.deps
    const refuse = (code: ErrorCode, detail: string) => errorReply(code, detail, requestId)
    // uWS itself accepts very large header blocks; bound them here.
    let headerBytes = 0
    req.forEach((name, value) => {
      headerBytes += name.length + value.length + 4
    })
    if (headerBytes > config.maxHeaderBytes) {
      return refuse(
        'HEADERS_TOO_LARGE',
        `${headerBytes} bytes of headers; the limit is ${config.maxHeaderBytes}`,
      )
    }
    const principal = auth.check(req.getHeader('x-api-key'), req.getHeader('authorization'), type)
    if (typeof principal === 'string') return authRefusal(principal, type, requestId)
    const overRate = rateRefusal(principal, requestId)
    if (overRate !== null) return overRate
    const contentType = req.getHeader('content-type')
    const encoding = parseContentType(contentType)
    if (encoding === undefined) {
      return refuse(
        'UNSUPPORTED_CONTENT_TYPE',
        `got ${JSON.stringify(contentType)}; use one of ${ACCEPTED_CONTENT_TYPES.join(', ')}`,
      )
    }
    const encodingHeader = req.getHeader('content-encoding')
    const contentEncoding = parseContentEncoding(encodingHeader)
    if (contentEncoding === undefined) {
      return refuse(
        'UNSUPPORTED_CONTENT_ENCODING',
        `got ${JSON.stringify(encodingHeader)}; use gzip, lz4 or none`,
      )
    }
    const lengthHeader = req.getHeader('content-length')
    let declared: number | undefined
    if (lengthHeader !== '') {
      if (!/^\d+$/.test(lengthHeader)) return refuse('MALFORMED_BODY', 'Content-Length is not a number')
      declared = Number(lengthHeader)
      if (declared > config.maxBodyBytes) {
        return refuse(
          'BODY_TOO_LARGE',
          `Content-Length ${declared} is over the limit of ${config.maxBodyBytes} bytes`,
        )
      }
    }
    const unavailable = ingest.refusal(requestId)
    if (unavailable !== null) return unavailable
    return { principal, encoding, contentEncoding, declared }
  }

  private write(res: HttpResponse, route: string, reply: Reply, requestId: string): void {
    writeReply(res, reply, requestId)
    this.deps.metrics.series.answered(route, reply.status).inc()
  }

  private readonly sweep = (): void => {
    const deadline = Date.now() - this.deps.config.bodyTimeoutMs
    for (const reader of this.reading) if (reader.startedAt < deadline) reader.fail('timeout')
  }

  close(): void {
    clearInterval(this.sweeper)
  }
}
