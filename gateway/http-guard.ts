import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import type { ErrorCode } from '../events/errors.js'
import { ChunkedBody } from './chunked-body.js'
import { checkHead, type HeadLimits, PEER_HEADER, requestIdIn } from './request-head.js'
import { requestIdFrom } from './request-id.js'
import { errorReply, STATUS_LINE } from './responses.js'

/**
 * The public listener when ADGATE_STRICT_HTTP=on: every request head is checked against RFC
 * 9112/9110 (request-head.ts) before the bytes reach uWS on a unix socket, and whatever uWS
 * would leave unanswered gets its status here (400, 408, 413, 414, 431, 501, 505) from the error
 * table, then a close. Bodies and responses pass through; responses are followed only far enough
 * to know where each ends (Content-Length; uWS always sends one), so a refusal is written after the
 * answers to the requests pipelined before it, HEAD gets no body, and HTTP/1.0 is closed after
 * its answer. A 101 turns the connection into a plain tunnel (WebSocket).
 *
 * Why a guard and not uWS itself: the only uWS build that loads on this glibc (20.30) holds such
 * connections until its idle timeout with no answer; newer builds need glibc 2.38.
 */
export interface GuardOptions {
  /** The unix socket uWS listens on. */
  readonly upstreamPath: string
  readonly maxHeaderBytes: number
  readonly maxBodyBytes: number
  readonly bodyTimeoutMs: number
  readonly tls?: { readonly cert: string; readonly key: string }
  /** Every status the guard answers itself (metrics). */
  readonly onRefused: (status: number) => void
}

export interface Guard {
  readonly port: number
  /** Stop accepting; connections end when their upstream does (or now, with `force`). */
  close(force?: boolean): Promise<void>
}

export async function startGuard(host: string, port: number, options: GuardOptions): Promise<Guard> {
  const limits: HeadLimits = {
    maxHeaderBytes: options.maxHeaderBytes,
    maxBodyBytes: options.maxBodyBytes,
    host: 'localhost',
    newRequestId: requestIdFrom,
  }
  const open = new Set<GuardedConnection>()
  const onConnection = (client: net.Socket) => {
    const c = new GuardedConnection(client, options, limits, () => open.delete(c))
    open.add(c)
  }
  const server = options.tls
    ? tls.createServer(
        { cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key), allowHalfOpen: true },
        onConnection,
      )
    : net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async (force = false) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      if (!force) return closed
      // Answers uWS already wrote may still be on their way through: let each connection pass
      // what it owes, then close it (at most SHUTDOWN_GRACE_MS).
      await Promise.all([...open].map((c) => c.shutdown()))
      await closed
    },
  }
}

type Pending =
  | { readonly local: null; readonly headOnly: boolean; readonly close: boolean }
  | { readonly local: Buffer }

const HEAD_END = Buffer.from('\n\r\n')
const CRLF = Buffer.from('\r\n')
const RESPONSE_START = Buffer.from('HTTP/1.1 ')
const BARE_HEAD_END = Buffer.from('\n\n')
const CONTENT_LENGTH_TEXT = '\r\ncontent-length:'
/** How uWS spells it: found without making a lower-cased string of every response head. */
const CONTENT_LENGTH = Buffer.from('\r\nContent-Length:')
/** After refusing, how long bytes still arriving are read and dropped so the close is not a reset. */
const LINGER_MS = 2000
/** On shutdown, how long a connection may still pass the answers it owes. */
const SHUTDOWN_GRACE_MS = 2000
/**
 * Every upstream socket reads into this one buffer (net's `onread`): reads are synchronous with
 * their callback, which copies what it forwards, so one buffer serves all connections. Saves a
 * 64 KiB allocation, its resize and a stream 'data' event per answer.
 */
const UPSTREAM_READS = Buffer.allocUnsafeSlow(64 * 1024)

class GuardedConnection {
  private readonly upstream: net.Socket
  // client → upstream
  private input: 'head' | 'body' | 'chunked' | 'tunnel' | 'done' = 'head'
  private partial: Buffer | null = null
  private remaining = 0
  /** The X-Request-Id of the request being received, for an answer the guard gives it. */
  private requestIdHeader = ''
  /** The request being received asked to close after its answer. */
  private closeAfter = false
  private readonly chunked = new ChunkedBody()
  private chunkedHead: Buffer | null = null
  private chunkedAnswer: Pending | null = null
  private peerLine: Buffer | null = null
  /** The last bytes for uWS from the chunk being read (toUpstream), and whether earlier ones are corked. */
  private nextUpstream: Buffer | null = null
  private upstreamCorked = false
  /** Pipelined bytes waiting for the answer before them. */
  private held: Buffer | null = null
  /** When the request being received started (its first byte), for 408. */
  private requestStarted = 0
  private timer: NodeJS.Timeout | null = null
  // upstream → client
  private readonly pending: Pending[] = []
  private output: 'head' | 'body' | 'tunnel' = 'head'
  private responsePartial: Buffer | null = null
  private responseRemaining = 0
  /**
   * Response bytes passed on as they are: one range of the current upstream chunk, grown while the
   * next bytes follow on, so a whole answer (head and body) goes out in one write instead of one per
   * part (on tiny requests the guard's cost is mostly its writes).
   */
  private outChunk: Buffer | null = null
  private outFrom = 0
  private outTo = 0
  private closed = false

  constructor(
    private readonly client: net.Socket,
    private readonly options: GuardOptions,
    private readonly limits: HeadLimits,
    private readonly onClose: () => void,
  ) {
    client.setNoDelay(true)
    this.upstream = net.connect({
      path: options.upstreamPath,
      onread: { buffer: UPSTREAM_READS, callback: this.upstreamRead },
    })
    client.on('data', this.fromClient)
    // Backpressure both ways: a slow reader slows its writer, nothing queues without bound.
    client.on('drain', () => this.upstream.resume())
    this.upstream.on('drain', () => this.client.resume())
    client.on('end', this.clientEnded)
    this.upstream.on('end', this.upstreamEnded)
    client.on('error', () => this.destroy())
    this.upstream.on('error', () => this.upstreamEnded())
    client.on('close', () => this.destroy())
    this.upstream.on('close', () => this.upstreamEnded())
  }

  /** Close once the answers owed are through (or after SHUTDOWN_GRACE_MS). */
  shutdown(): Promise<void> {
    this.input = 'done'
    if (this.closed || this.pending.length === 0) {
      this.finish() // an end, not a destroy: what was written still reaches the client
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      this.onShutdown = () => {
        this.finish()
        resolve()
      }
      setTimeout(this.onShutdown, SHUTDOWN_GRACE_MS).unref()
    })
  }

  private onShutdown: (() => void) | null = null

  destroy(): void {
    if (this.closed) return
    this.closed = true
    this.clearTimer()
    this.client.destroy()
    this.upstream.destroy()
    this.onClose()
  }

  // ---- client → upstream -------------------------------------------------------------------

  private readonly fromClient = (chunk: Buffer): void => {
    if (this.input === 'done') return // lingering after a refusal: read and drop
    if (this.input === 'tunnel') {
      this.writeUpstream(chunk)
      return
    }
    let at = 0
    while (
      at < chunk.length &&
      (this.input === 'head' || this.input === 'body' || this.input === 'chunked')
    ) {
      if (this.input === 'head') {
        if (this.pending.length > 0 && this.partial === null) {
          // uWS closes a connection that pipelines a request after one with a body: the next
          // request waits here until the answer before it is out.
          this.held =
            this.held === null
              ? Buffer.from(chunk.subarray(at))
              : Buffer.concat([this.held, chunk.subarray(at)])
          this.client.pause()
          break
        }
        at = this.readHead(chunk, at)
      } else if (this.input === 'body') {
        const n = Math.min(this.remaining, chunk.length - at)
        this.toUpstream(at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n))
        this.remaining -= n
        at += n
        if (this.remaining === 0) this.requestDone()
      } else if (this.input === 'chunked') {
        const used = this.chunked.read(chunk, at)
        if (used < 0) {
          this.refuse('MALFORMED_REQUEST', 'malformed chunked body (RFC 9112 §7.1)', '')
          break
        }
        at += used
        if (this.chunked.length > this.options.maxBodyBytes) {
          this.refuse(
            'BODY_TOO_LARGE',
            `the body is over the limit of ${this.options.maxBodyBytes} bytes`,
            '',
          )
          break
        }
        if (this.chunked.done) {
          this.pending.push(this.chunkedAnswer!)
          this.toUpstream(this.withPeer(this.chunkedHead!, false))
          this.toUpstream(Buffer.from(`Content-Length: ${this.chunked.length}\r\n\r\n`))
          this.toUpstream(this.chunked.data())
          this.chunkedHead = null
          this.requestDone()
        }
      } else {
        this.toUpstream(chunk.subarray(at))
        at = chunk.length
      }
    }
    this.flushUpstream()
    if (this.input === 'head' ? this.partial !== null : this.input === 'body' || this.input === 'chunked')
      this.armTimer()
  }

  /** Reads a head from chunk[at…]; returns where its body starts (or chunk.length when incomplete). */
  private readHead(chunk: Buffer, at: number): number {
    let buf = chunk
    let start = at
    if (this.partial === null) {
      // RFC 9112 §2.2: empty lines before a request line are ignored.
      while (start < chunk.length && (chunk[start] === 13 || chunk[start] === 10)) start++
      if (start === chunk.length) return start
      this.requestStarted = Date.now()
      this.requestIdHeader = ''
    } else {
      buf = Buffer.concat([this.partial, chunk.subarray(at)])
      start = 0
    }
    const from = this.partial === null ? start : Math.max(0, this.partial.length - 3)
    const crlf = buf.indexOf(HEAD_END, from)
    const lf = buf.indexOf(BARE_HEAD_END, from)
    if (lf !== -1 && (crlf === -1 || lf < crlf)) {
      this.refuse('MALFORMED_REQUEST', 'header lines must end with CRLF (RFC 9112 §2.2)', '')
      return chunk.length
    }
    if (crlf === -1) {
      if (buf.length - start > this.options.maxHeaderBytes) {
        this.tooLarge(buf, start)
        return chunk.length
      }
      this.partial = Buffer.from(buf.subarray(start)) // copied: the chunk may be reused by the socket
      return chunk.length
    }
    const headEnd = crlf + 3
    const consumed = this.partial === null ? headEnd : at + headEnd - this.partial.length
    this.partial = null
    if (headEnd - start > this.options.maxHeaderBytes) {
      this.tooLarge(buf, start)
      return chunk.length
    }
    const head = checkHead(buf.subarray(start, headEnd), this.limits)
    if ('code' in head) {
      this.refuse(head.code, head.detail, head.requestId, head.headers)
      return chunk.length
    }
    // A chunked body's head waits for the body (sent with a Content-Length); others go now.
    const answer = { local: null, headOnly: head.headOnly, close: head.close }
    if (head.chunked) {
      this.chunkedHead = head.head
      this.chunkedAnswer = answer
    } else {
      this.toUpstream(this.withPeer(head.head))
      this.pending.push(answer)
    }
    this.closeAfter = head.close
    this.requestIdHeader = head.requestIdHeader
    if (head.chunked) {
      this.chunked.reset()
      this.input = 'chunked'
    } else if (head.length > 0) {
      this.remaining = head.length
      this.input = 'body'
    } else {
      this.requestDone()
    }
    return consumed
  }

  /** The head with the client's address added (trackers record it), before its final CRLF. */
  private withPeer(head: Buffer, complete = true): Buffer {
    this.peerLine ??= Buffer.from(`${PEER_HEADER}: ${this.client.remoteAddress ?? ''}\r\n`, 'latin1')
    const peer = this.peerLine
    // One copy into one buffer (no Buffer.concat and its array per request).
    const fields = complete ? head.length - 2 : head.length
    const out = Buffer.allocUnsafe(fields + peer.length + (complete ? 2 : 0))
    head.copy(out, 0, 0, fields)
    peer.copy(out, fields)
    if (complete) CRLF.copy(out, fields + peer.length)
    return out
  }

  /** A head over the limit: 414 when the request line alone is (RFC 9112 §3), else 431. */
  private tooLarge(buf: Buffer, start: number): void {
    const lineEnd = buf.indexOf('\r\n', start)
    const max = this.options.maxHeaderBytes
    this.requestIdHeader = requestIdIn(buf.subarray(start))
    if (lineEnd === -1 || lineEnd - start > max)
      this.refuse('URI_TOO_LONG', `the request line is over ${max} bytes`, '')
    else this.refuse('HEADERS_TOO_LARGE', `the request head is over ${max} bytes`, '')
  }

  /** HTTP/1.0 or Connection: close: nothing after this request is read. */
  private requestDone(): void {
    this.clearTimer()
    this.input = this.closeAfter ? 'done' : 'head'
  }

  /**
   * Bytes for uWS, written when the client's chunk is through (flushUpstream): one write, and no
   * cork, for a chunk that makes one (a request without a body: the common case, where corking
   * cost more than it saved); several are corked into one writev.
   */
  private toUpstream(bytes: Buffer): void {
    if (this.nextUpstream === null) {
      this.nextUpstream = bytes
      return
    }
    if (!this.upstreamCorked) {
      this.upstreamCorked = true
      this.upstream.cork()
    }
    this.writeUpstream(this.nextUpstream)
    this.nextUpstream = bytes
  }

  private flushUpstream(): void {
    const last = this.nextUpstream
    if (last === null) return
    this.nextUpstream = null
    // A refusal may have dropped uWS meanwhile (flushLocal): what was for it goes nowhere.
    if (!this.upstream.destroyed) this.writeUpstream(last)
    if (this.upstreamCorked) {
      this.upstreamCorked = false
      this.upstream.uncork()
    }
  }

  private writeUpstream(bytes: Buffer): void {
    if (!this.upstream.write(bytes)) this.client.pause()
  }

  private armTimer(): void {
    if (this.timer !== null) return
    const left = this.requestStarted + this.options.bodyTimeoutMs - Date.now()
    this.timer = setTimeout(this.timedOut, Math.max(0, left))
    this.timer.unref()
  }

  private clearTimer(): void {
    if (this.timer === null) return
    clearTimeout(this.timer)
    this.timer = null
  }

  private readonly timedOut = (): void => {
    this.timer = null
    if (this.input === 'head' && this.partial === null) return
    this.stalled()
  }

  /** The request did not arrive in time (or uWS gave up on it first): 408 once the answers before it are out. */
  private stalled(): void {
    const what = this.input === 'head' ? 'request head' : 'body'
    // uWS holds the half-received request: drop it there, answer here.
    // A body in progress has its answer queued (a chunked one not yet: it was not forwarded).
    if (this.input === 'body') this.pending.pop()
    const waiting = this.pending.length
    this.refuse('REQUEST_TIMEOUT', `the ${what} did not arrive within ${this.options.bodyTimeoutMs} ms`, '')
    if (waiting > 0)
      this.destroy() // uWS is dropped: the earlier answers cannot come
    else this.upstream.destroy()
  }

  /** Answer from the error table, after the answers already owed, then close. */
  private refuse(
    code: ErrorCode,
    detail: string,
    requestId: string,
    headers?: Readonly<Record<string, string>>,
  ): void {
    this.input = 'done'
    this.clearTimer()
    const id = requestId || requestIdFrom(this.requestIdHeader)
    const reply = errorReply(code, detail, id, {}, { ...headers, Connection: 'close' })
    this.options.onRefused(reply.status)
    let text = `HTTP/1.1 ${STATUS_LINE[reply.status]}\r\nContent-Type: application/json\r\nX-Request-Id: ${id}\r\n`
    for (const name in reply.headers) text += `${name}: ${reply.headers[name]}\r\n`
    text += `Content-Length: ${Buffer.byteLength(reply.body)}\r\n\r\n${reply.body}`
    this.pending.push({ local: Buffer.from(text) })
    this.flushLocal()
  }

  private readonly clientEnded = (): void => {
    // The client sent all it will (a half-close): its answers may still come.
    if (this.input === 'body' || this.input === 'chunked' || this.partial !== null) this.stalled()
    else if (this.input !== 'done') this.input = 'done'
    if (this.pending.length === 0) this.finish()
  }

  // ---- upstream → client -------------------------------------------------------------------

  /** uWS's bytes, read into UPSTREAM_READS: nothing may hold on to them past this call (forward copies). */
  private readonly upstreamRead = (length: number): boolean => {
    this.fromUpstream(UPSTREAM_READS.subarray(0, length))
    return true // pausing is write()'s, through upstream.pause()
  }

  private fromUpstream(chunk: Buffer): void {
    if (this.output === 'tunnel') {
      this.toClient(Buffer.from(chunk)) // a copy: see upstreamRead
      return
    }
    // No cork: forward() gathers a chunk's answers into one write already.
    let at = 0
    while (at < chunk.length) {
      if (this.output === 'head') at = this.readResponseHead(chunk, at)
      else if (this.output === 'body') {
        const n = Math.min(this.responseRemaining, chunk.length - at)
        const front = this.pending[0]
        if (!(front?.local === null && front.headOnly)) this.forward(chunk, at, at + n)
        this.responseRemaining -= n
        at += n
        if (this.responseRemaining === 0) this.responseDone()
      } else {
        this.forward(chunk, at, chunk.length)
        at = chunk.length
      }
    }
    this.flushForward()
  }

  /** Pass chunk[from, to) on to the client, after what is already collected. */
  private forward(chunk: Buffer, from: number, to: number): void {
    if (this.outChunk === chunk && this.outTo === from) {
      this.outTo = to
      return
    }
    this.flushForward()
    this.outChunk = chunk
    this.outFrom = from
    this.outTo = to
  }

  private flushForward(): void {
    const chunk = this.outChunk
    if (chunk === null) return
    this.outChunk = null
    // A copy: the chunk is UPSTREAM_READS, read into again by the next upstream read of any connection.
    this.write(Buffer.from(chunk.subarray(this.outFrom, this.outTo)))
  }

  private readResponseHead(chunk: Buffer, at: number): number {
    let buf = chunk
    let start = at
    if (this.responsePartial !== null) {
      buf = Buffer.concat([this.responsePartial, chunk.subarray(at)])
      start = 0
    }
    const end = buf.indexOf(HEAD_END, start)
    if (end === -1) {
      this.responsePartial = Buffer.from(buf.subarray(start))
      return chunk.length
    }
    const headEnd = end + 3
    const consumed = this.responsePartial === null ? headEnd : at + headEnd - this.responsePartial.length
    this.responsePartial = null
    const head = buf.subarray(start, headEnd)
    if (buf === chunk) this.forward(chunk, start, headEnd)
    else this.toClient(head)
    const status = (head[9]! - 48) * 100 + (head[10]! - 48) * 10 + (head[11]! - 48)
    if (status === 101) {
      this.output = 'tunnel'
      this.input = 'tunnel'
      this.pending.length = 0
      return consumed
    }
    if (status < 200) return consumed // 100 Continue: the final answer follows
    const front = this.pending[0]
    let length = contentLength(head)
    if (front?.local === null && front.headOnly) {
      // A HEAD answer has no body (RFC 9110 §9.3.2), but uWS writes one on routes without a HEAD
      // handler, in the same write as the head: drop it when it is there.
      const next = buf.subarray(headEnd)
      const hasBody = length !== null && length > 0 && next.length > 0 && !startsWith(next, RESPONSE_START)
      length = hasBody ? length : 0
    }
    if (length === null) {
      // No length (uWS never does this for end()): the body runs to the close.
      this.output = 'tunnel'
      return consumed
    }
    this.responseRemaining = length
    if (length > 0) this.output = 'body'
    else this.responseDone()
    return consumed
  }

  private responseDone(): void {
    this.output = 'head'
    const done = this.pending.shift()
    if (done?.local === null && done.close) {
      this.finish()
      return
    }
    this.flushLocal()
    if (this.pending.length === 0 && this.onShutdown !== null) {
      this.onShutdown()
      return
    }
    if (this.pending.length === 0 && this.held !== null) {
      const held = this.held
      this.held = null
      this.client.resume()
      this.fromClient(held)
    }
    if (this.pending.length === 0 && this.input === 'done' && this.client.readableEnded) this.finish()
  }

  /** A refusal whose turn has come is written, and the connection closes behind it. */
  private flushLocal(): void {
    const front = this.pending[0]
    if (front === undefined || front.local === null || this.output !== 'head') return
    this.pending.length = 0
    this.upstream.destroy()
    this.flushForward()
    this.client.end(front.local)
    // Keep reading (and dropping) for a while: closing with unread bytes would reset the answer away.
    setTimeout(() => this.destroy(), LINGER_MS).unref()
  }

  private toClient(bytes: Buffer): void {
    this.flushForward()
    this.write(bytes)
  }

  private write(bytes: Buffer): void {
    if (!this.client.write(bytes)) this.upstream.pause()
  }

  private readonly upstreamEnded = (): void => {
    if (this.closed) return
    const front = this.pending[0]
    if (
      front?.local === null &&
      this.output === 'head' &&
      (this.input === 'body' || this.input === 'chunked')
    ) {
      // uWS closed while the body was still arriving (its idle timer): the client still gets its 408.
      this.stalled()
      return
    }
    if (front !== undefined && front.local !== null && this.output === 'head') return // being flushed
    this.finish()
  }

  /** Everything owed was written: close both sides. */
  private finish(): void {
    if (this.closed) return
    this.flushForward()
    this.upstream.end()
    this.client.end()
    setTimeout(() => this.destroy(), LINGER_MS).unref()
  }
}

/** The Content-Length of a response head from uWS (it writes exactly one), or null. */
function contentLength(head: Buffer): number | null {
  let at = head.indexOf(CONTENT_LENGTH)
  if (at === -1) at = head.toString('latin1').toLowerCase().indexOf(CONTENT_LENGTH_TEXT)
  if (at === -1) return null
  let n = 0
  let i = at + CONTENT_LENGTH_TEXT.length
  while (head[i] === 32) i++
  for (; head[i]! >= 48 && head[i]! <= 57; i++) n = n * 10 + head[i]! - 48
  return n
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.subarray(0, prefix.length).equals(prefix)
}
