import type { HttpRequest, TemplatedApp, WebSocket } from 'uWebSockets.js'
import { CONTENT_ENCODINGS, type ContentEncoding } from '../decoders/content-encoding.js'
import type { Encoding } from '../decoders/result.js'
import { type EventType, isEventType } from '../events/catalog.js'
import { authRefusal, rateRefusal } from './admission.js'
import { answer } from './answer.js'
import { mayPost, type Principal } from './auth.js'
import type { HttpDeps } from './http.js'
import type { GatewayMetrics } from './metrics.js'
import { clientOf } from './refused-work.js'
import { requestIdFrom } from './request-id.js'
import { errorReply, type Reply, writeReply } from './responses.js'

/**
 * GET /v1/stream: a long-lived WebSocket for high-rate producers. Each binary message is one batch:
 *
 *   {"seq":42,"type":"impression","encoding":"ndjson","content_encoding":"identity"}\n<body bytes>
 *
 * and the server answers each with a text message {"seq":42,"status":200,...} carrying the same
 * body an HTTP request would get, once the batch's events are durable. Acks may arrive out of
 * order. At most ADGATE_WS_MAX_IN_FLIGHT batches may wait for their ack; beyond that a batch is
 * answered 503 at once. A client that does not read its acks is disconnected (backpressure limit).
 */
interface Session {
  principal: Principal
  /** Who is charged for refused work (refused-work.ts). */
  client: string
  inFlight: number
  open: boolean
  id: string
}

const ENCODINGS: readonly Encoding[] = ['json', 'ndjson', 'csv', 'avro']
const NEWLINE = 10

/** What a WebSocket stream needs: the same parts as a POST (http.ts). */
export type StreamDeps = HttpDeps

export function registerStream(app: TemplatedApp, deps: StreamDeps): void {
  const { config, auth, ingest, metrics } = deps
  app.ws<Session>('/v1/stream', {
    maxPayloadLength: config.maxBodyBytes + 4096,
    maxBackpressure: 1 << 20,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      const requestId = requestIdFrom(req.getHeader('x-request-id'))
      const principal = auth.principal(req.getHeader('x-api-key'), req.getHeader('authorization'))
      const refused =
        handshakeError(req, requestId) ??
        (typeof principal === 'string'
          ? authRefusal(principal, 'these', requestId)
          : ingest.refusal(requestId))
      if (refused !== null || typeof principal === 'string') {
        if (refused !== null) writeReply(res, refused, requestId)
        return
      }
      res.upgrade<Session>(
        {
          principal,
          client: clientOf(auth, principal, deps.address.of(res, req)),
          inFlight: 0,
          open: true,
          id: requestId,
        },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      )
    },
    open: () => metrics.wsConnections.inc(),
    close: (ws) => {
      ws.getUserData().open = false
      metrics.wsConnections.dec()
    },
    message: (ws, message) => {
      const session = ws.getUserData()
      // The ArrayBuffer is detached when this returns: parse the header and copy the body now.
      const bytes = new Uint8Array(message)
      const nl = bytes.indexOf(NEWLINE)
      const header = parseHeader(nl === -1 ? null : Buffer.from(bytes.subarray(0, nl)).toString('utf8'))
      const requestId = `${session.id}.${typeof header === 'string' ? 'x' : header.seq}`
      if (typeof header === 'string')
        return ack(ws, metrics, null, errorReply('MALFORMED_BODY', header, requestId))
      const { seq, type, encoding, contentEncoding } = header
      if (!mayPost(session.principal, type))
        return ack(ws, metrics, seq, authRefusal('EVENT_TYPE_NOT_ALLOWED', type, requestId))
      const overRate = rateRefusal(session.principal, requestId)
      if (overRate !== null) return ack(ws, metrics, seq, overRate)
      if (session.inFlight >= config.wsMaxInFlight) {
        return ack(
          ws,
          metrics,
          seq,
          errorReply(
            'NOT_DURABLE',
            `more than ${config.wsMaxInFlight} batches are waiting for their acks`,
            requestId,
          ),
        )
      }
      const body = Buffer.allocUnsafeSlow(bytes.length - nl - 1)
      body.set(bytes.subarray(nl + 1))
      session.inFlight++
      metrics.series.bodyBytes.observe(body.length)
      const receivedAt = Date.now()
      const work = ingest.ingest({
        body,
        type,
        encoding,
        contentEncoding,
        source: session.principal.name,
        client: session.client,
        requestId,
        ingestTime: receivedAt,
      })
      answer(work, '/v1/stream', receivedAt, requestId, deps).then((reply) => {
        session.inFlight--
        ack(ws, metrics, seq, reply)
      })
    },
  })
  // uWS passes a GET without Sec-WebSocket-Key on to the next route: answer it here, not 404.
  app.get('/v1/stream', (res, req) => {
    const requestId = requestIdFrom(req.getHeader('x-request-id'))
    writeReply(
      res,
      handshakeError(req, requestId) ?? errorReply('BAD_WEBSOCKET_HANDSHAKE', 'no handshake', requestId),
      requestId,
    )
  })
}

/**
 * RFC 6455 §4.2.1: a GET with Upgrade: websocket, Connection: Upgrade, a Sec-WebSocket-Key of 16
 * base64 bytes and version 13. uWS upgrades without checking the first two or the version.
 */
function handshakeError(req: HttpRequest, requestId: string): Reply | null {
  const upgrade = req.getHeader('upgrade').toLowerCase()
  const version = req.getHeader('sec-websocket-version')
  if (!upgrade.split(',').some((t) => t.trim() === 'websocket') || version !== '13')
    return errorReply(
      'UPGRADE_REQUIRED',
      version === '' || version === '13'
        ? 'send Upgrade: websocket'
        : `Sec-WebSocket-Version ${JSON.stringify(version)}; only 13`,
      requestId,
      {},
      UPGRADE_HEADERS,
    )
  if (!/(^|,)\s*upgrade\s*(,|$)/i.test(req.getHeader('connection')))
    return errorReply('BAD_WEBSOCKET_HANDSHAKE', 'send Connection: Upgrade', requestId)
  if (!WEBSOCKET_KEY.test(req.getHeader('sec-websocket-key')))
    return errorReply(
      'BAD_WEBSOCKET_HANDSHAKE',
      'Sec-WebSocket-Key must be 16 random bytes in base64',
      requestId,
    )
  return null
}

const UPGRADE_HEADERS = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' }
const WEBSOCKET_KEY = /^[A-Za-z0-9+/]{22}==$/

function ack(ws: WebSocket<Session>, metrics: GatewayMetrics, seq: number | null, reply: Reply): void {
  metrics.wsBatches.inc({ status: reply.status })
  if (!ws.getUserData().open) return
  // {"seq":…,"status":…, then the reply's JSON object's members (it has some, none of these two).
  const head = Buffer.from(`{"seq":${JSON.stringify(seq)},"status":${reply.status},`)
  const body = reply.bytes ?? Buffer.from(reply.body)
  ws.cork(() => ws.send(Buffer.concat([head, body.subarray(1)]), false))
}

interface Header {
  seq: number
  type: EventType
  encoding: Encoding
  contentEncoding: ContentEncoding
}

/** The batch header, or why it is not one. */
function parseHeader(line: string | null): Header | string {
  if (line === null) return 'a message is a JSON header line, a newline, then the body'
  let h: Record<string, unknown>
  try {
    h = JSON.parse(line)
  } catch {
    return 'the header line is not JSON'
  }
  if (h === null || typeof h !== 'object') return 'the header line must be a JSON object'
  if (!Number.isSafeInteger(h.seq) || (h.seq as number) < 0) return 'seq must be a non-negative integer'
  if (typeof h.type !== 'string' || !isEventType(h.type))
    return 'type must be bid, impression, click or conversion'
  if (!ENCODINGS.includes(h.encoding as Encoding)) return `encoding must be one of ${ENCODINGS.join(', ')}`
  const ce = h.content_encoding ?? 'identity'
  if (!(CONTENT_ENCODINGS as readonly unknown[]).includes(ce))
    return `content_encoding must be one of ${CONTENT_ENCODINGS.join(', ')}`
  return {
    seq: h.seq as number,
    type: h.type,
    encoding: h.encoding as Encoding,
    contentEncoding: ce as ContentEncoding,
  }
}
