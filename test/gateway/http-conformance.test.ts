// HTTP/1.1 conformance of the gateway's edge (ADGATE_STRICT_HTTP=on, the default), one test per
// rule of RFC 9112 (message syntax) and RFC 9110 (semantics), over raw sockets against a real
// gateway. Issue 15, defects 2, 3 and 7: these requests were left unanswered (~10 s, then a close),
// framing errors were accepted, and a stalled body lost its 408 to uWS's idle timer.
import { describe, expect, inject, it } from 'vitest'
import { ERRORS } from '../../events/errors.js'
import { gatewayForBlock } from '../support/gateway.js'
import { type RawExchange, rawExchange } from '../support/raw-http.js'

const brokers = inject('kafkaBrokers')
const BODY_TIMEOUT_MS = 1000
const MAX_BODY = 64 * 1024
/** "Answered at all": the body timeout plus a generous margin for a loaded machine. */
const DEADLINE_MS = BODY_TIMEOUT_MS + 4000

const IMPRESSION = JSON.stringify({
  event_id: 'e1',
  event_time: 1760000000000,
  impression_id: 'i1',
  auction_id: 'a1',
  campaign_id: 'c1',
  cost_micros: 1,
})

describe.skipIf(brokers.length === 0)('HTTP conformance (RFC 9110 / RFC 9112)', () => {
  const gw = gatewayForBlock(brokers, {
    ADGATE_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
    ADGATE_MAX_BODY_BYTES: String(MAX_BODY),
  })

  const send = (request: string, options: Parameters<typeof rawExchange>[2] = {}) =>
    rawExchange(gw.port, request, { waitMs: DEADLINE_MS, ...options })

  /** One answer with this status and error code (from the one error table), then a close. */
  function refused(x: RawExchange, status: number, code?: keyof typeof ERRORS): void {
    expect(x.responses.map((r) => r.status)).toEqual([status])
    if (code) {
      expect(ERRORS[code].status).toBe(status)
      expect(JSON.parse(x.responses[0]!.body).error.code).toBe(code)
    }
    expect(x.closed).toBe(true)
    expect(x.ms).toBeLessThan(DEADLINE_MS)
  }

  describe('RFC 9112 §2.3 / RFC 9110 §6.2: HTTP version', () => {
    it('issue 15 defect 2: HTTP/1.0 is served (curl --http1.0, nginx proxy_pass) and closed after its answer', async () => {
      const x = await send('GET /healthz HTTP/1.0\r\n\r\n')
      expect(x.responses.map((r) => r.status)).toEqual([200])
      expect(JSON.parse(x.responses[0]!.body)).toEqual({ status: 'ok' })
      expect(x.closed).toBe(true)
      expect(x.ms).toBeLessThan(DEADLINE_MS)
    })

    it('HTTP/1.0 with Connection: keep-alive stays open for the next request', async () => {
      const x = await send(
        'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n',
      )
      expect(x.responses.map((r) => r.status)).toEqual([200, 200])
      expect(x.closed).toBe(true)
    })

    it('HTTP/1.0 POST with a body is ingested', async () => {
      const body = IMPRESSION
      const x = await send(
        `POST /v1/impressions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      )
      expect(x.responses.map((r) => r.status)).toEqual([200])
    })

    it('§6.2: a higher minor version (HTTP/1.2) is served as HTTP/1.1', async () => {
      const x = await send('GET /healthz HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n')
      expect(x.responses.map((r) => r.status)).toEqual([200])
    })

    it('RFC 9110 §15.6.6: another major version (HTTP/2.0 in an HTTP/1 request line) is 505', async () => {
      refused(await send('GET /healthz HTTP/2.0\r\nHost: a\r\n\r\n'), 505, 'HTTP_VERSION_NOT_SUPPORTED')
    })

    it('a request line that is not HTTP at all is 400', async () => {
      refused(await send('hello there\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })
  })

  describe('RFC 9112 §2.2: message parsing', () => {
    it('issue 15 defect 2: bare LF line endings are 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\nHost: a\n\n'), 400, 'MALFORMED_REQUEST')
    })

    it('a bare LF inside the header block is 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('empty lines before the request line are ignored', async () => {
      const x = await send('\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n', { responses: 1 })
      expect(x.responses.map((r) => r.status)).toEqual([200])
    })
  })

  describe('RFC 9112 §3: request line', () => {
    it('RFC 9110 §9.1 / issue 15 defect 2: an unknown method (QUERY) is 501', async () => {
      refused(await send('QUERY /healthz HTTP/1.1\r\nHost: a\r\n\r\n'), 501, 'NOT_IMPLEMENTED')
    })

    it('RFC 9110 §9.1: methods are case-sensitive (get is not GET): 501', async () => {
      refused(await send('get /healthz HTTP/1.1\r\nHost: a\r\n\r\n'), 501, 'NOT_IMPLEMENTED')
    })

    it('a method that is not a token is 400', async () => {
      refused(await send('G(T /healthz HTTP/1.1\r\nHost: a\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('RFC 9110 §15.5.6: a known method on an event route is 405 with Allow', async () => {
      const x = await send('PUT /v1/impressions HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', {
        responses: 1,
      })
      expect(x.responses[0]!.status).toBe(405)
      expect(x.responses[0]!.headers.allow).toBe('POST')
    })

    it('§3.2.2: the absolute-form target is accepted', async () => {
      const x = await send('GET http://gateway.example/healthz HTTP/1.1\r\nHost: gateway.example\r\n\r\n', {
        responses: 1,
      })
      expect(x.responses.map((r) => r.status)).toEqual([200])
    })

    it('§3.2.4: the asterisk-form is for OPTIONS only (400 otherwise)', async () => {
      refused(await send('GET * HTTP/1.1\r\nHost: a\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('§3: too many spaces in the request line is 400', async () => {
      refused(await send('GET  /healthz HTTP/1.1\r\nHost: a\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('RFC 9110 §15.5.15: a request line over the header limit is 414', async () => {
      refused(await send(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: a\r\n\r\n`), 414, 'URI_TOO_LONG')
    })

    it('RFC 9110 §9.3.6: CONNECT is 501 (not a proxy)', async () => {
      refused(await send('CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n'), 501, 'NOT_IMPLEMENTED')
    })
  })

  describe('RFC 9112 §3.2: Host', () => {
    it('issue 15 defect 2: an HTTP/1.1 request without Host is 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('two Host headers are 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })
  })

  describe('RFC 9112 §5 / RFC 9110 §5: header fields', () => {
    it('issue 15 defect 2: a legal token name with "_" (X_Forwarded_For) is served; the field is dropped, as nginx does', async () => {
      const x = await send('GET /healthz HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1\r\n\r\n', { responses: 1 })
      expect(x.responses.map((r) => r.status)).toEqual([200])
    })

    it('names with every other token character are served too', async () => {
      const x = await send("GET /healthz HTTP/1.1\r\nHost: a\r\nX!#$%&'*+.^`|~: 1\r\n\r\n", { responses: 1 })
      expect(x.responses.map((r) => r.status)).toEqual([200])
    })

    it('§5.1: whitespace between a field name and the colon is 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('§5.2: obsolete line folding is 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('RFC 9110 §5.5 / issue 15 defect 2: a control character in a field value is 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('RFC 9110 §5.5: HTAB and obs-text in a value are allowed', async () => {
      const x = await send('GET /healthz HTTP/1.1\r\nHost: a\r\nX: a\tb\xe9\r\n\r\n', { responses: 1 })
      expect(x.responses.map((r) => r.status)).toEqual([200])
    })

    it('a line without a colon is 400', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n'), 400, 'MALFORMED_REQUEST')
    })

    it('RFC 6585 §5: a header block over ADGATE_MAX_HEADER_BYTES is 431', async () => {
      refused(
        await send(`GET /healthz HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`),
        431,
        'HEADERS_TOO_LARGE',
      )
    })

    it('RFC 6585 §5: more header fields than the edge keeps is 431', async () => {
      const many = Array.from({ length: 150 }, (_, i) => `X-${i}: 1\r\n`).join('')
      refused(await send(`GET /healthz HTTP/1.1\r\nHost: a\r\n${many}\r\n`), 431, 'HEADERS_TOO_LARGE')
    })
  })

  describe('RFC 9112 §6: message body framing', () => {
    const post = (headers: string, body = '') =>
      `POST /v1/impressions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n${headers}\r\n${body}`

    it('§6.3 / issue 15 defect 3: two different Content-Lengths are 400', async () => {
      refused(await send(post('Content-Length: 2\r\nContent-Length: 5\r\n', '{}')), 400, 'MALFORMED_REQUEST')
    })

    it('§6.3: a Content-Length list with different values is 400', async () => {
      refused(await send(post('Content-Length: 2, 5\r\n', '{}')), 400, 'MALFORMED_REQUEST')
    })

    it('§6.3: a Content-Length that is not a number is 400', async () => {
      refused(await send(post('Content-Length: -1\r\n', '{}')), 400, 'MALFORMED_REQUEST')
    })

    it('§6.3 / issue 15 defect 2: a Content-Length of 10+ digits is 413 (over the limit)', async () => {
      refused(await send(post('Content-Length: 10000000000\r\n')), 413, 'BODY_TOO_LARGE')
    })

    it('RFC 9110 §15.5.14: a body over the limit by Content-Length is 413 before it is read', async () => {
      refused(await send(post(`Content-Length: ${MAX_BODY + 1}\r\n`)), 413, 'BODY_TOO_LARGE')
    })

    it('§6.1: Transfer-Encoding with Content-Length is 400', async () => {
      refused(
        await send(post('Content-Length: 2\r\nTransfer-Encoding: chunked\r\n', '2\r\n{}\r\n0\r\n\r\n')),
        400,
        'MALFORMED_REQUEST',
      )
    })

    it('§6.1: a transfer coding other than chunked is 501', async () => {
      refused(await send(post('Transfer-Encoding: gzip, chunked\r\n')), 501, 'NOT_IMPLEMENTED')
    })

    it('§7.1: a chunked body is read (and the next request after it on the connection)', async () => {
      const body = IMPRESSION
      const chunked = `${body.length.toString(16)};ext=1\r\n${body}\r\n0\r\nX-Trailer: 1\r\n\r\n`
      const x = await send(
        `${post('Transfer-Encoding: chunked\r\n', chunked)}GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n`,
        {
          responses: 2,
        },
      )
      expect(x.responses.map((r) => r.status)).toEqual([200, 200])
    })

    it('§7.1: a malformed chunk size is 400', async () => {
      refused(
        await send(post('Transfer-Encoding: chunked\r\n', 'zz\r\n{}\r\n0\r\n\r\n')),
        400,
        'MALFORMED_REQUEST',
      )
    })

    it('RFC 9110 §15.5.9 / issue 15 defect 3: a stalled body gets 408, every time, within the body timeout', async () => {
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          send(post(`Content-Length: ${IMPRESSION.length}\r\n`, IMPRESSION.slice(0, 10))),
        ),
      )
      for (const x of answers) {
        refused(x, 408, 'REQUEST_TIMEOUT')
        expect(x.ms).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50)
      }
    })

    it('RFC 9110 §15.5.9: a head that never ends gets 408 too', async () => {
      refused(await send('GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: 1'), 408, 'REQUEST_TIMEOUT')
    })

    it('a client that half-closes mid-body gets 408 for it', async () => {
      refused(await send(post('Content-Length: 100\r\n', '{"a":'), { end: true }), 408, 'REQUEST_TIMEOUT')
    })
  })

  describe('RFC 9112 §9.3: persistence and pipelining', () => {
    it('pipelined requests are answered in order', async () => {
      const get = 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n'
      const x = await send(get + get + get, { responses: 3 })
      expect(x.responses.map((r) => r.status)).toEqual([200, 200, 200])
    })

    it('a bad request after good pipelined ones is answered after them, then the connection closes', async () => {
      const x = await send(
        'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n',
      )
      expect(x.responses.map((r) => r.status)).toEqual([200, 400])
      expect(x.closed).toBe(true)
    })

    it('§9.6: Connection: close closes after the answer', async () => {
      const x = await send('GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
      expect(x.responses.map((r) => r.status)).toEqual([200])
      expect(x.closed).toBe(true)
    })
  })

  describe('RFC 9110 §9.3.2: HEAD', () => {
    it('a HEAD answer has no body, and the connection stays usable', async () => {
      const x = await send(
        'HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      )
      const text = x.raw
      const second = text.indexOf('HTTP/1.1 200', 1)
      expect(text.startsWith('HTTP/1.1 ')).toBe(true)
      expect(second).toBeGreaterThan(0)
      expect(text.slice(text.indexOf('\r\n\r\n') + 4, second)).toBe('')
      expect(text.endsWith('{"status":"ok"}')).toBe(true)
    })

    it('HEAD on the pixel (a route with its own HEAD handler) is 200 without a body', async () => {
      const x = await send('HEAD /v1/t/impression.gif HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
      expect(x.raw.startsWith('HTTP/1.1 200 ')).toBe(true)
      expect(x.raw.endsWith('\r\n\r\n')).toBe(true)
      expect(x.closed).toBe(true)
    })
  })

  describe('RFC 6455 §4.2.1 / issue 15 defect 7: the WebSocket handshake', () => {
    const upgrade = (headers: string) => `GET /v1/stream HTTP/1.1\r\nHost: a\r\n${headers}\r\n`
    const KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'

    it('a valid handshake is 101', async () => {
      const x = await send(
        upgrade(`Upgrade: websocket\r\nConnection: Upgrade\r\n${KEY}Sec-WebSocket-Version: 13\r\n`),
        {
          waitMs: 1500,
        },
      )
      expect(x.raw.startsWith('HTTP/1.1 101 ')).toBe(true)
    })

    it('without Upgrade: websocket it is 426 with Upgrade, not a WebSocket', async () => {
      const x = await send(upgrade(`Connection: Upgrade\r\n${KEY}Sec-WebSocket-Version: 13\r\n`), {
        responses: 1,
      })
      expect(x.responses[0]!.status).toBe(426)
      expect(x.responses[0]!.headers.upgrade).toBe('websocket')
    })

    it('a version other than 13 (or not a number) is 426 naming version 13', async () => {
      const x = await send(
        upgrade(`Upgrade: websocket\r\nConnection: Upgrade\r\n${KEY}Sec-WebSocket-Version: abc\r\n`),
        {
          responses: 1,
        },
      )
      expect(x.responses[0]!.status).toBe(426)
      expect(x.responses[0]!.headers['sec-websocket-version']).toBe('13')
    })

    it('without Sec-WebSocket-Key it is 400, not 404', async () => {
      const x = await send(
        upgrade('Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'),
        {
          responses: 1,
        },
      )
      expect(x.responses[0]!.status).toBe(400)
      expect(JSON.parse(x.responses[0]!.body).error.code).toBe('BAD_WEBSOCKET_HANDSHAKE')
    })
  })

  it('after all of the above the gateway still serves', async () => {
    const x = await send('GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(x.responses.map((r) => r.status)).toEqual([200])
  })
})
