import { connect, type Socket } from 'node:net'
import { Reader } from '../protocol/reader.js'
import { Writer } from '../protocol/writer.js'

/**
 * One TCP connection to one broker. Requests are framed (INT32 size) with a v1 header
 * (api key, api version, correlation id, client id); responses are matched by correlation id,
 * so many requests can be in flight at once. A broken socket fails every pending request; the
 * owner makes a new Connection.
 */
interface Pending {
  resolve: (body: Reader) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

export class ConnectionError extends Error {}

export class Connection {
  private readonly socket: Socket
  private readonly pending = new Map<number, Pending>()
  private readonly ready: Promise<void>
  private nextId = 1
  private inbox: Buffer[] = []
  private inboxBytes = 0
  private failure: Error | null = null

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly clientId: string,
    connectTimeoutMs: number,
  ) {
    this.socket = connect({ host, port, noDelay: true })
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new ConnectionError(`connect to ${host}:${port} timed out`)),
        connectTimeoutMs,
      )
      this.socket.once('connect', () => {
        clearTimeout(timer)
        resolve()
      })
      this.socket.once('error', (err) => {
        clearTimeout(timer)
        reject(new ConnectionError(`${host}:${port}: ${err.message}`))
      })
    })
    this.ready.catch(() => {}) // surfaced through request()
    this.socket.on('data', this.onData)
    this.socket.on('error', (err) => this.fail(new ConnectionError(`${host}:${port}: ${err.message}`)))
    this.socket.on('close', () => this.fail(new ConnectionError(`${host}:${port}: connection closed`)))
  }

  get broken(): boolean {
    return this.failure !== null
  }

  /** Send one request; `body` writes the request body. Resolves with a reader over the response body. */
  async request(
    apiKey: number,
    apiVersion: number,
    timeoutMs: number,
    body: (w: Writer) => void,
  ): Promise<Reader> {
    await this.ready
    if (this.failure) throw this.failure
    const id = this.nextId++
    if (this.nextId > 0x7fffffff) this.nextId = 1
    const w = new Writer(1024)
    const size = w.reserve32()
    w.int16(apiKey).int16(apiVersion).int32(id).string(this.clientId)
    body(w)
    w.buf.writeInt32BE(w.pos - 4, size)
    return new Promise((resolve, reject) => {
      // A broker that does not answer in time is taken as stuck: drop the connection (failing
      // everything pending on it) so retries go out on a fresh one instead of queueing behind it.
      const timer = setTimeout(() => {
        this.fail(new ConnectionError(`${this.host}:${this.port}: no response within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
      this.socket.write(w.result())
    })
  }

  private readonly onData = (chunk: Buffer): void => {
    this.inbox.push(chunk)
    this.inboxBytes += chunk.length
    while (this.inboxBytes >= 4) {
      const head = this.inbox.length === 1 ? this.inbox[0]! : Buffer.concat(this.inbox)
      const size = head.readInt32BE(0)
      if (head.length < 4 + size) {
        this.inbox = [head]
        return
      }
      const frame = head.subarray(4, 4 + size)
      const rest = head.subarray(4 + size)
      this.inbox = rest.length > 0 ? [rest] : []
      this.inboxBytes = rest.length
      const id = frame.readInt32BE(0)
      const p = this.pending.get(id)
      if (!p) continue // timed out already
      this.pending.delete(id)
      clearTimeout(p.timer)
      const reader = new Reader(frame)
      reader.pos = 4
      p.resolve(reader)
    }
  }

  private fail(err: Error): void {
    if (this.failure) return
    this.failure = err
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      p.reject(err)
    }
    this.pending.clear()
    this.socket.destroy()
  }

  close(): void {
    this.fail(new ConnectionError('closed'))
  }
}
