// A raw-socket HTTP/1.x client for conformance tests: bytes out exactly as given, the answers in.
import { connect } from 'node:net'

export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface RawExchange {
  /** Every complete response, in order. */
  readonly responses: RawResponse[]
  /** Bytes after the last complete response (a truncated one, or garbage). */
  readonly rest: string
  /** Everything received, latin1. */
  readonly raw: string
  /** The server closed the connection (rather than the wait running out). */
  readonly closed: boolean
  readonly ms: number
}

export interface RawOptions {
  /** Resolve once this many responses are complete, without waiting for a close. */
  readonly responses?: number
  /** Give up waiting after this long (the connection is then still open: `closed` false). */
  readonly waitMs?: number
  /** Half-close after sending (as `nc -N`). */
  readonly end?: boolean
  /** The request is HEAD: its answers end with their head (RFC 9110 §9.3.2), whatever Content-Length says. */
  readonly head?: boolean
}

/** Send `request` (a string is latin1: one char per byte), collect what comes back. */
export function rawExchange(
  port: number,
  request: string | Buffer,
  options: RawOptions = {},
): Promise<RawExchange> {
  const started = Date.now()
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let data = Buffer.alloc(0)
    let settled = false
    const done = (closed: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({
        ...parseResponses(data, options.head),
        raw: data.toString('latin1'),
        closed,
        ms: Date.now() - started,
      })
    }
    const timer = setTimeout(() => done(false), options.waitMs ?? 5000)
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d])
      if (
        options.responses !== undefined &&
        parseResponses(data, options.head).responses.length >= options.responses
      )
        done(false)
    })
    socket.on('close', () => done(true))
    socket.on('error', () => done(true))
    socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request)
    if (options.end) socket.end()
  })
}

export function parseResponses(data: Buffer, head = false): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = []
  let at = 0
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at)
    if (end === -1) break
    const lines = data.toString('latin1', at, end).split('\r\n')
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!)
    if (m === null) break
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const status = Number(m[1])
    const length = head || status < 200 || status === 204 ? 0 : Number(headers['content-length'] ?? 0)
    if (data.length < end + 4 + length) break
    responses.push({ status, headers, body: data.toString('utf8', end + 4, end + 4 + length) })
    at = end + 4 + length
  }
  return { responses, rest: data.toString('latin1', at) }
}
