import type { ErrorCode } from '../events/errors.js'

/**
 * One HTTP/1.x request head (request line and header fields, up to and including the empty line),
 * checked against RFC 9112 / RFC 9110 before uWS sees it. The uWS build that loads here answers
 * nothing at all (it holds the connection until its idle timeout) for HTTP/1.0, header names with
 * token characters other than letters, digits and '-', control characters, bare LF, a missing Host
 * and more; it silently takes the first of two Content-Lengths. A head is either refused (a
 * status from the error table) or forwarded, rewritten only where uWS needs it.
 */
export interface HeadOk {
  /**
   * The bytes to forward: the original head, or a rewritten one. For a chunked body, the head
   * without Transfer-Encoding and without its final empty line: the guard de-chunks the body and
   * sends it with a Content-Length (this uWS build reads no chunk extensions or trailers).
   */
  readonly head: Buffer
  /** Body framing: a Content-Length, or chunked. */
  readonly length: number
  readonly chunked: boolean
  /** A HEAD request: its answer has no body (uWS writes one on some routes; it is dropped). */
  readonly headOnly: boolean
  /** The client asked to close after this response (HTTP/1.0 without keep-alive, Connection: close). */
  readonly close: boolean
  readonly upgrade: boolean
  /** The X-Request-Id header as sent ('' when none). */
  readonly requestIdHeader: string
}

export interface HeadRefused {
  readonly code: ErrorCode
  readonly detail: string
  readonly requestId: string
  /** Extra response headers (Allow, Sec-WebSocket-Version …). */
  readonly headers?: Readonly<Record<string, string>>
}

/** The header the guard adds with the client's address (uWS sees only the guard's). */
export const PEER_HEADER = 'X-Adgate-Peer'
const PEER_HEADER_LOWER = 'x-adgate-peer'

/** Methods this uWS build routes; any other token is answered 501 (RFC 9110 §9.1). */
const ROUTED_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'CONNECT',
])
// RFC 9110 §5.6.2 token characters.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/**
 * "Not of the class" scanners, run from a position with endOfRun (global flag: they start at
 * lastIndex and allocate nothing): a header name is a token when its first non-token character is
 * its colon.
 */
const NOT_TOKEN = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/g
/** uWS reads header names of these characters only; other token characters stall its parser. */
const NOT_UWS_NAME = /[^A-Za-z0-9-]/g
// RFC 9110 §5.5: field values are visible characters, obs-text, SP and HTAB; no other controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/g
/** The header names read below, by length: any other name is not lower-cased at all. */
const READ_NAME_LENGTHS = new Set(
  ['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'x-request-id', PEER_HEADER].map(
    (n) => n.length,
  ),
)
// RFC 9112 §3.2: origin-form; any byte above SP but DEL (percent-decoding is the router's job).
const TARGET = /^[\x21-\x7e\x80-\xff]+$/
const VERSION = /^HTTP\/(\d)\.(\d)$/
const DIGITS = /^\d+$/
/** uWS keeps at most this many header fields; more would go unanswered. */
export const MAX_FIELDS = 100

export interface HeadLimits {
  readonly maxHeaderBytes: number
  readonly maxBodyBytes: number
  /** A fallback Host for HTTP/1.0 requests without one (uWS needs one). */
  readonly host: string
  readonly newRequestId: (given: string) => string
}

/**
 * Check and, where needed, rewrite one head. `head` ends with CRLF CRLF (the caller found it; a
 * bare LF anywhere is refused here). Latin-1 keeps one char per byte, so positions are bytes.
 */
export function checkHead(head: Buffer, limits: HeadLimits): HeadOk | HeadRefused {
  const text = head.toString('latin1')
  let requestIdHeader = ''
  const refuse = (code: ErrorCode, detail: string, headers?: Record<string, string>): HeadRefused => ({
    code,
    detail,
    requestId: limits.newRequestId(requestIdHeader),
    ...(headers ? { headers } : {}),
  })
  const lineEnd = text.indexOf('\r\n')
  // RFC 9112 §2.2: a bare LF (or CR) is not a line end we accept: the framing would be ambiguous.
  const lfAt = text.indexOf('\n')
  if (lfAt !== lineEnd + 1)
    return refuse('MALFORMED_REQUEST', 'the request line must end with CRLF (RFC 9112 §2.2)')
  const requestLine = text.slice(0, lineEnd)
  if (requestLine.length > limits.maxHeaderBytes)
    return refuse('URI_TOO_LONG', `the request line is ${requestLine.length} bytes (RFC 9112 §3)`)
  const parts = requestLine.split(' ')
  if (parts.length !== 3)
    return refuse('MALFORMED_REQUEST', 'the request line is method SP target SP version (RFC 9112 §3)')
  const [method, version] = [parts[0]!, parts[2]!]
  let target = parts[1]!
  if (!TOKEN.test(method)) return refuse('MALFORMED_REQUEST', 'the method is not a token (RFC 9110 §9.1)')
  const v = VERSION.exec(version)
  if (v === null)
    return refuse('MALFORMED_REQUEST', `${JSON.stringify(version)} is not an HTTP version (RFC 9112 §2.3)`)
  if (v[1] !== '1')
    return refuse('HTTP_VERSION_NOT_SUPPORTED', `${version} over an HTTP/1 connection (RFC 9110 §15.6.6)`)
  const http10 = v[2] === '0'
  if (!TARGET.test(target))
    return refuse(
      'MALFORMED_REQUEST',
      'the request target holds spaces or control characters (RFC 9112 §3.2)',
    )

  // Header fields.
  let host: string | null = null
  let hosts = 0
  let length: string | null = null
  let lengths = 0
  let transferEncoding: string | null = null
  let connection = ''
  let upgrade = false
  let drop: [number, number][] | null = null
  let fields = 0
  let pos = lineEnd + 2
  const end = head.length - 2 // the final empty line
  while (pos < end) {
    // Positions in `text`, no per-line strings: most fields are only checked, never read.
    const eol = text.indexOf('\r\n', pos)
    const lf = text.indexOf('\n', pos)
    if (lf !== eol + 1) return refuse('MALFORMED_REQUEST', 'header lines must end with CRLF (RFC 9112 §2.2)')
    const c = text.charCodeAt(pos)
    if (c === 32 || c === 9) return refuse('MALFORMED_REQUEST', 'obsolete line folding (RFC 9112 §5.2)')
    let colon = text.indexOf(':', pos)
    if (colon > eol) colon = -1
    if (colon <= pos)
      return refuse(
        'MALFORMED_REQUEST',
        `a header line without a name and colon: ${JSON.stringify(text.slice(pos, Math.min(eol, pos + 40)))}`,
      )
    const uwsName = endOfRun(NOT_UWS_NAME, text, pos) === colon
    if (!uwsName && endOfRun(NOT_TOKEN, text, pos) !== colon)
      return refuse(
        'MALFORMED_REQUEST',
        `header name ${JSON.stringify(text.slice(pos, Math.min(colon, pos + 40)))} is not a token (RFC 9112 §5.1: no space before the colon)`,
      )
    // The line's own CR is the first control character of a clean value.
    if (endOfRun(BAD_VALUE, text, colon + 1) !== eol)
      return refuse(
        'MALFORMED_REQUEST',
        `header ${text.slice(pos, colon)} holds a control character (RFC 9110 §5.5)`,
      )
    if (++fields > MAX_FIELDS) return refuse('HEADERS_TOO_LARGE', `more than ${MAX_FIELDS} header fields`)
    if (!uwsName) {
      // Legal but unreadable by uWS: dropped, as nginx does with underscores (ignore_invalid_headers).
      drop ??= []
      drop.push([pos, eol + 2])
      pos = eol + 2
      continue
    }
    const name = READ_NAME_LENGTHS.has(colon - pos) ? text.slice(pos, colon).toLowerCase() : ''
    switch (name) {
      case 'host':
        host = text.slice(colon + 1, eol).trim()
        hosts++
        break
      case 'content-length':
        for (const item of text.slice(colon + 1, eol).split(',')) {
          const n = item.trim()
          if (length !== null && n !== length)
            return refuse('MALFORMED_REQUEST', 'Content-Length values differ (RFC 9112 §6.3)')
          length = n
          lengths++
        }
        break
      case 'transfer-encoding': {
        const value = text.slice(colon + 1, eol).trim()
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`
        drop ??= []
        drop.push([pos, eol + 2])
        break
      }
      case 'connection': {
        const value = text
          .slice(colon + 1, eol)
          .trim()
          .toLowerCase()
        connection = connection ? `${connection}, ${value}` : value
        break
      }
      case 'upgrade':
        upgrade = true
        break
      case 'x-request-id':
        requestIdHeader = text.slice(colon + 1, eol).trim()
        break
      case PEER_HEADER_LOWER:
        // Only the guard says who the peer is: a client's own claim is dropped.
        drop ??= []
        drop.push([pos, eol + 2])
        break
    }
    pos = eol + 2
  }

  if (!http10 && hosts === 0)
    return refuse('MALFORMED_REQUEST', 'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)')
  if (hosts > 1) return refuse('MALFORMED_REQUEST', 'more than one Host header (RFC 9112 §3.2)')
  if (host !== null && /[\s@/]/.test(host))
    return refuse('MALFORMED_REQUEST', 'Host is not host[:port] (RFC 9110 §7.2)')
  let chunked = false
  if (transferEncoding !== null) {
    if (length !== null)
      return refuse('MALFORMED_REQUEST', 'both Transfer-Encoding and Content-Length (RFC 9112 §6.1)')
    if (http10) return refuse('MALFORMED_REQUEST', 'Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)')
    if (transferEncoding.toLowerCase() !== 'chunked')
      return refuse(
        'NOT_IMPLEMENTED',
        `transfer coding ${JSON.stringify(transferEncoding)}; only chunked (RFC 9112 §6.1)`,
      )
    chunked = true
  }
  let bodyLength = 0
  if (length !== null) {
    if (!DIGITS.test(length))
      return refuse('MALFORMED_REQUEST', 'Content-Length is not a number (RFC 9112 §6.3)')
    if (lengths > 1) return refuse('MALFORMED_REQUEST', 'more than one Content-Length (RFC 9112 §6.3)')
    bodyLength = length.length > 15 ? Number.POSITIVE_INFINITY : Number(length)
    if (bodyLength > limits.maxBodyBytes)
      return refuse(
        'BODY_TOO_LARGE',
        `Content-Length ${length} is over the limit of ${limits.maxBodyBytes} bytes`,
      )
  }
  if (!ROUTED_METHODS.has(method))
    return refuse(
      'NOT_IMPLEMENTED',
      `method ${method.slice(0, 40)} (RFC 9110 §9.1; methods are case-sensitive)`,
    )
  if (target === '*') {
    if (method !== 'OPTIONS')
      return refuse('MALFORMED_REQUEST', '* is a target for OPTIONS only (RFC 9112 §3.2.4)')
  } else if (method === 'CONNECT') {
    return refuse('NOT_IMPLEMENTED', 'CONNECT: this is not a proxy (RFC 9110 §9.3.6)')
  } else if (target.charCodeAt(0) !== 47) {
    // RFC 9112 §3.2.2: a server MUST accept the absolute-form; uWS routes the origin-form only.
    const m = /^https?:\/\/[^/?#]*(.*)$/i.exec(target)
    if (m === null)
      return refuse('MALFORMED_REQUEST', 'the target is neither a path nor an absolute URI (RFC 9112 §3.2)')
    target = m[1]!.startsWith('/') ? m[1]! : `/${m[1]!}`
  }

  const close = http10 ? !/\bkeep-alive\b/.test(connection) : /\bclose\b/.test(connection)
  const headOnly = method === 'HEAD'
  const rewrite = http10 || v[2] !== '1' || drop !== null || target !== parts[1]
  let out = head
  if (rewrite) {
    // uWS answers HTTP/1.1 only and needs a Host: give it what it reads.
    let fieldsText = ''
    let at = lineEnd + 2
    for (const [from, to] of drop ?? []) {
      fieldsText += text.slice(at, from)
      at = to
    }
    fieldsText += text.slice(at, end)
    if (host === null) fieldsText += `Host: ${limits.host}\r\n`
    if (close && http10) fieldsText += 'Connection: close\r\n'
    out = Buffer.from(`${method} ${target} HTTP/1.1\r\n${fieldsText}${chunked ? '' : '\r\n'}`, 'latin1')
  }
  return {
    head: out,
    length: chunked ? 0 : bodyLength,
    chunked,
    headOnly,
    close,
    upgrade: upgrade && method === 'GET',
    requestIdHeader,
  }
}

/** Where the first character `scanner` finds at or after `from` is (text.length: none). */
function endOfRun(scanner: RegExp, text: string, from: number): number {
  scanner.lastIndex = from
  return scanner.test(text) ? scanner.lastIndex - 1 : text.length
}

/** The X-Request-Id of a head that was not parsed (over the limits): '' when none. */
export function requestIdIn(head: Buffer): string {
  const m = /\r\nx-request-id:[ \t]*([^\r\n]{0,64})/i.exec(
    head.toString('latin1', 0, Math.min(head.length, 1 << 16)),
  )
  return m === null ? '' : m[1]!.trim()
}
