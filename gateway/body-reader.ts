import type { HttpResponse } from 'uWebSockets.js'

export type BodyFailure = 'too-large' | 'timeout' | 'aborted'

/**
 * Collects a request body from uWS. uWS hands out each chunk in an ArrayBuffer that is detached
 * when the callback returns, so chunks are copied: straight into one buffer of the declared
 * Content-Length when there is one, otherwise into a list concatenated once at the end. The
 * limit is checked on every chunk, so a body that lies about (or omits) its length still stops
 * at the limit. The buffer is allocated outside Node's pool so it can be transferred to a worker.
 */
export class BodyReader {
  private chunks: Buffer[] | null = null
  private buf: Buffer | null = null
  private received = 0
  private done = false
  readonly startedAt: number

  constructor(
    private readonly res: HttpResponse,
    declaredLength: number | undefined,
    private readonly maxBytes: number,
    private readonly onBody: (body: Buffer) => void,
    private readonly onFailure: (why: BodyFailure) => void,
  ) {
    this.startedAt = Date.now()
    if (declaredLength !== undefined) this.buf = Buffer.allocUnsafeSlow(declaredLength)
    else this.chunks = []
    res.onData(this.onData)
  }

  private readonly onData = (chunk: ArrayBuffer, isLast: boolean): void => {
    if (this.done) return
    const n = chunk.byteLength
    if (this.received + n > this.maxBytes || (this.buf !== null && this.received + n > this.buf.length)) {
      this.fail('too-large')
      return
    }
    const view = new Uint8Array(chunk)
    if (this.buf !== null) this.buf.set(view, this.received)
    else this.chunks!.push(Buffer.from(view)) // Buffer.from(Uint8Array) copies
    this.received += n
    if (!isLast) return
    this.done = true
    if (this.buf !== null)
      this.onBody(this.received === this.buf.length ? this.buf : this.buf.subarray(0, this.received))
    else this.onBody(concatUnpooled(this.chunks!, this.received))
  }

  /** The request was aborted by the client or the gateway gave up on it. */
  fail(why: BodyFailure): void {
    if (this.done) return
    this.done = true
    this.onFailure(why)
  }

  get finished(): boolean {
    return this.done
  }

  get response(): HttpResponse {
    return this.res
  }
}

function concatUnpooled(chunks: Buffer[], length: number): Buffer {
  const out = Buffer.allocUnsafeSlow(length)
  let at = 0
  for (const c of chunks) {
    c.copy(out, at)
    at += c.length
  }
  return out
}
