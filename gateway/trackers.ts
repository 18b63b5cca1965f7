import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js'
import type { EventType } from '../events/catalog.js'
import type { ErrorCode } from '../events/errors.js'
import { authRefusal, rateRefusal } from './admission.js'
import { answer } from './answer.js'
import type { Authenticator } from './auth.js'
import type { HttpDeps } from './http.js'
import type { IngestService } from './ingest.js'
import { TokenBucket } from './rate-limit.js'
import { RedirectGuard } from './redirect-guard.js'
import { requestIdFrom } from './request-id.js'
import { errorReply, type Reply, replyText, writeReply } from './responses.js'
import { hitToCsv } from './tracker-query.js'

/**
 * GET trackers: an impression pixel, a click redirect and a conversion postback. Each hit is one
 * event, ingested exactly as a POSTed body (tracker-query.ts), and answered once it is durable.
 *
 * Browsers fetch pixels and follow click links; they cannot send API keys and must never land on
 * an error page, so the pixel and the click are unauthenticated (bounded by
 * ADGATE_TRACKER_RATE_LIMIT_RPS; a signed click link authenticates itself, redirect-guard.ts) and
 * always answer what the browser needs once the request itself is sound. The event's fate is in
 * the X-Adgate-Event header: durable | not-durable | invalid | rate-limited.
 *   pixel       GIF (or 204 with r=204) when durable or not durable; 400 for invalid parameters
 *               (nothing shows a pixel's error, but whoever debugs the tag reads why).
 *   click       302 to the landing URL once it is verified, whatever became of the event (it is
 *               the user's click: the landing page is more important than the record); 400 only
 *               when the landing URL is not verified.
 *   conversion  server to server: authenticated like POST when keys are configured, answered as a
 *               POST (200, or 204 with r=204; 400; 503 + Retry-After).
 */
export type TrackerKind = 'pixel' | 'click' | 'conversion'

export const TRACKER_PATHS: Readonly<Record<TrackerKind, string>> = {
  pixel: '/v1/t/impression.gif',
  click: '/v1/t/click',
  conversion: '/v1/t/conversion',
}

const EVENT_OF: Readonly<Record<TrackerKind, EventType>> = {
  pixel: 'impression',
  click: 'click',
  conversion: 'conversion',
}

/** What a handler reads from the request before uWS frees it. */
export interface TrackerRequest {
  readonly kind: TrackerKind
  /** The raw query string, without '?'. */
  readonly query: string
  readonly requestId: string
  readonly userAgent: string
  readonly ip: string
  readonly apiKey: string
  readonly authorization: string
  /** Request line target plus header names and values, against ADGATE_MAX_HEADER_BYTES. */
  readonly headerBytes: number
  readonly receivedAt: number
}

export interface TrackerDeps {
  readonly ingest: Pick<IngestService, 'ingest'>
  readonly auth: Authenticator
  readonly guard: RedirectGuard
  /** ADGATE_TRACKER_RATE_LIMIT_RPS over pixels and clicks; null = unlimited. */
  readonly bucket: TokenBucket | null
  readonly maxHeaderBytes: number
}

/** A transparent 1×1 GIF89a (43 bytes). */
export const PIXEL_GIF = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64')

/** Every tracker answer: caches must not swallow a hit (RFC 9111 §5.2.2; Pragma/Expires for HTTP/1.0). */
const NO_CACHE = {
  'Cache-Control': 'no-store, no-cache, must-revalidate, max-age=0',
  Pragma: 'no-cache',
  Expires: '0',
}

type Fate = 'durable' | 'not-durable' | 'invalid' | 'rate-limited'

/** The answer to one tracker hit: a plain function of the request, so it is tested without sockets. */
export async function answerTracker(req: TrackerRequest, deps: TrackerDeps): Promise<Reply> {
  const { kind, requestId } = req
  const refuse = (code: ErrorCode, detail: string, headers?: Record<string, string>) =>
    errorReply(code, detail, requestId, {}, { ...NO_CACHE, ...headers })
  if (req.headerBytes > deps.maxHeaderBytes)
    return refuse(
      'HEADERS_TOO_LARGE',
      `${req.headerBytes} bytes of URL and headers; the limit is ${deps.maxHeaderBytes}`,
    )
  const params = new URLSearchParams(req.query)

  let source = 'tracker'
  let location: string | null = null
  if (kind === 'conversion') {
    const principal = deps.auth.check(req.apiKey, req.authorization, 'conversion')
    if (typeof principal === 'string') return authRefusal(principal, 'conversion', requestId, NO_CACHE)
    const overRate = rateRefusal(principal, requestId, NO_CACHE)
    if (overRate !== null) return overRate
    source = principal.name
  } else if (kind === 'click') {
    const verdict = deps.guard.check(req.query, params.get('url'))
    if (!verdict.ok) return refuse('REDIRECT_NOT_ALLOWED', verdict.detail)
    location = verdict.location
  }
  if (kind !== 'conversion') {
    const wait = deps.bucket?.take() ?? 0
    if (wait > 0) {
      if (location !== null) return redirect(location, 'rate-limited')
      return refuse('RATE_LIMITED', 'over ADGATE_TRACKER_RATE_LIMIT_RPS', { 'Retry-After': String(wait) })
    }
  }

  const type = EVENT_OF[kind]
  const body = hitToCsv(type, params, { ingestTime: req.receivedAt, userAgent: req.userAgent, ip: req.ip })
  if (typeof body === 'string') {
    if (location !== null) return redirect(location, 'invalid', 'INVALID_QUERY')
    return refuse('INVALID_QUERY', body)
  }
  const reply = await deps.ingest.ingest({
    body,
    type,
    encoding: 'csv',
    contentEncoding: 'identity',
    source,
    // Trackers have no key: refused hits are charged to their address (refused-work.ts).
    client: req.ip,
    requestId,
    ingestTime: req.receivedAt,
  })
  const fate: Fate = reply.status === 200 ? 'durable' : reply.status === 503 ? 'not-durable' : 'invalid'
  if (location !== null) return redirect(location, fate, fate === 'invalid' ? codeOf(reply) : undefined)
  const noBody = params.get('r') === '204'
  if (kind === 'pixel' && fate !== 'invalid') {
    const headers = { ...NO_CACHE, 'X-Adgate-Event': fate }
    if (noBody) return { status: 204, body: '', contentType: null, headers }
    return { status: 200, body: '', bytes: PIXEL_GIF, contentType: 'image/gif', headers }
  }
  if (reply.status === 200 && noBody)
    return { status: 204, body: '', contentType: null, headers: { ...NO_CACHE, 'X-Adgate-Event': fate } }
  return { ...reply, headers: { ...reply.headers, ...NO_CACHE, 'X-Adgate-Event': fate } }
}

function redirect(location: string, fate: Fate, code?: string): Reply {
  const headers: Record<string, string> = { ...NO_CACHE, Location: location, 'X-Adgate-Event': fate }
  if (code !== undefined) headers['X-Adgate-Error'] = code
  return { status: 302, body: '', contentType: null, headers }
}

/** The error code of an ingest reply (an error body), for the click's X-Adgate-Error header. */
function codeOf(reply: Reply): string {
  try {
    return (JSON.parse(replyText(reply)) as { error: { code: string } }).error.code
  } catch {
    return 'INVALID_EVENT'
  }
}

/** Wires the trackers into uWS: GET (and HEAD on the pixel, which records nothing); other methods 405. */
export class TrackerRoutes {
  /** Hits received and not yet answered (graceful shutdown waits for these). */
  inFlight = 0

  private readonly deps: TrackerDeps

  constructor(private readonly http: HttpDeps) {
    const { config, ingest, auth, logger } = http
    const key = config.trackerHmacKey ?? config.trackerHmacKeyFile
    const hosts = config.redirectAllowlist ?? []
    const rps = config.trackerRateLimitRps
    this.deps = {
      ingest,
      auth,
      guard: new RedirectGuard(key, hosts),
      bucket: rps > 0 ? new TokenBucket(rps, rps) : null,
      maxHeaderBytes: config.maxHeaderBytes,
    }
    if (key === undefined && hosts.length === 0)
      logger.warn(
        'neither ADGATE_TRACKER_HMAC_KEY nor ADGATE_REDIRECT_ALLOWLIST is set: the click tracker redirects nowhere (400)',
      )
  }

  register(app: TemplatedApp): void {
    for (const kind of ['pixel', 'click', 'conversion'] as const) {
      const path = TRACKER_PATHS[kind]
      app.get(path, (res, req) => this.handle(kind, res, req))
      const allow = kind === 'pixel' ? 'GET, HEAD' : 'GET'
      if (kind === 'pixel') app.head(path, (res, req) => this.head(res, req))
      app.any(path, (res, req) => {
        const id = requestIdFrom(req.getHeader('x-request-id'))
        this.write(
          res,
          path,
          errorReply('METHOD_NOT_ALLOWED', `use ${allow} on ${path}`, id, {}, { Allow: allow }),
          id,
        )
      })
    }
  }

  private handle(kind: TrackerKind, res: HttpResponse, req: HttpRequest): void {
    // uWS: everything is read from req now (it dies when this returns) and onAborted attached now.
    const query = req.getQuery() ?? ''
    let headerBytes = req.getUrl().length + query.length
    req.forEach((name, value) => {
      headerBytes += name.length + value.length + 4
    })
    const request: TrackerRequest = {
      kind,
      query,
      requestId: requestIdFrom(req.getHeader('x-request-id')),
      userAgent: req.getHeader('user-agent'),
      ip: this.http.address.of(res, req),
      apiKey: req.getHeader('x-api-key'),
      authorization: req.getHeader('authorization'),
      headerBytes,
      receivedAt: Date.now(),
    }
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    const path = TRACKER_PATHS[kind]
    this.inFlight++
    answer(answerTracker(request, this.deps), path, request.receivedAt, request.requestId, this.http).then(
      (reply) => {
        try {
          if (!aborted) res.cork(() => this.write(res, path, reply, request.requestId))
        } finally {
          this.inFlight--
        }
      },
    )
  }

  /** HEAD is safe (RFC 9110 §9.2.1): link checkers and prefetchers get the pixel's headers, no event. */
  private head(res: HttpResponse, req: HttpRequest): void {
    const id = requestIdFrom(req.getHeader('x-request-id'))
    res.writeStatus('200 OK').writeHeader('Content-Type', 'image/gif').writeHeader('X-Request-Id', id)
    for (const [name, value] of Object.entries(NO_CACHE)) res.writeHeader(name, value)
    // No Content-Length: endWithoutBody(n) aborts the process in this uWS build (seen with 20.30).
    res.endWithoutBody()
    this.http.metrics.series.answered(TRACKER_PATHS.pixel, 200).inc()
  }

  private write(res: HttpResponse, route: string, reply: Reply, requestId: string): void {
    writeReply(res, reply, requestId)
    this.http.metrics.series.answered(route, reply.status).inc()
  }
}
