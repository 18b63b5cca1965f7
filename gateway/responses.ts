import type { HttpResponse } from 'uWebSockets.js'
import { ERRORS, type ErrorCode } from '../events/errors.js'

/** Status lines (RFC 9110 §15 reason phrases) of every status adgate answers. */
export const STATUS_LINE: Readonly<Record<number, string>> = {
  200: '200 OK',
  204: '204 No Content',
  207: '207 Multi-Status',
  302: '302 Found',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  413: '413 Content Too Large',
  414: '414 URI Too Long',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  426: '426 Upgrade Required',
  431: '431 Request Header Fields Too Large',
  500: '500 Internal Server Error',
  501: '501 Not Implemented',
  503: '503 Service Unavailable',
  505: '505 HTTP Version Not Supported',
}

const WWW_AUTHENTICATE = { 'WWW-Authenticate': 'Bearer realm="adgate"' }

export interface Reply {
  readonly status: number
  readonly body: string
  /** A binary body (the tracking pixel), written instead of `body`. */
  readonly bytes?: Uint8Array
  /** Default application/json; null: no Content-Type (204, 302). */
  readonly contentType?: string | null
  readonly headers?: Readonly<Record<string, string>>
  /** Close the connection after answering (the client is still sending a body we will not read). */
  readonly close?: boolean
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; detail: string; retryable: boolean }
  request_id: string
  [more: string]: unknown
}

/** A reply for one row of the error table; extra fields go beside `error` in the body. */
export function errorReply(
  code: ErrorCode,
  detail: string,
  requestId: string,
  extra: Record<string, unknown> = {},
  headers?: Record<string, string>,
): Reply {
  const e = ERRORS[code]
  const body: ErrorBody = {
    error: { code, message: e.message, detail, retryable: e.retryable },
    request_id: requestId,
    ...extra,
  }
  // RFC 9110 §15.5.2: a 401 says how to authenticate.
  const standard = e.status === 503 ? { 'Retry-After': '1' } : e.status === 401 ? WWW_AUTHENTICATE : undefined
  return { status: e.status, body: JSON.stringify(body), headers: { ...standard, ...headers } }
}

export function jsonReply(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, body: JSON.stringify(body), headers }
}

/**
 * A JSON reply written as these parts back to back: text, and JSON bytes a worker already wrote
 * (the rejected events' list, megabytes for a body of many invalid events: the event loop only
 * copies it).
 */
export function jsonPartsReply(reply: Omit<Reply, 'body'>, parts: readonly (string | Uint8Array)[]): Reply {
  const bytes = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))
  return { ...reply, body: '', bytes }
}

/** A reply's body as text (a JSON body may be in `bytes`, see jsonPartsReply). */
export function replyText(reply: Reply): string {
  return reply.bytes === undefined ? reply.body : Buffer.from(reply.bytes).toString()
}

/** Write a reply; callers that awaited must call this inside res.cork() and only if not aborted. */
export function writeReply(res: HttpResponse, reply: Reply, requestId?: string): void {
  res.writeStatus(STATUS_LINE[reply.status] ?? `${reply.status} Status`)
  if (reply.contentType !== null) res.writeHeader('Content-Type', reply.contentType ?? 'application/json')
  if (requestId) res.writeHeader('X-Request-Id', requestId)
  if (reply.headers) for (const name in reply.headers) res.writeHeader(name, reply.headers[name]!)
  // RFC 9110 §8.6: no Content-Length on a 204.
  if (reply.status === 204) res.endWithoutBody(undefined, reply.close === true)
  else res.end(reply.bytes ?? reply.body, reply.close === true)
}
