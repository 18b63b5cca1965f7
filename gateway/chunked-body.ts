/**
 * A chunked request body (RFC 9112 §7.1), decoded incrementally: the guard sends uWS the data with
 * a Content-Length, since this uWS build stalls on chunk extensions and trailers. Bounded by the
 * body limit; chunk extensions and trailer fields are read and dropped.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk   = 1*("0") [ chunk-ext ] CRLF
 */
const MAX_LINE = 4096

export class ChunkedBody {
  private state: 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' = 'size'
  private line = ''
  private left = 0
  private parts: Buffer[] = []
  /** Data bytes so far. */
  length = 0
  done = false

  reset(): void {
    this.state = 'size'
    this.line = ''
    this.left = 0
    this.parts = []
    this.length = 0
    this.done = false
  }

  /** The data, once `done`. */
  data(): Buffer {
    return Buffer.concat(this.parts, this.length)
  }

  /** Consume bytes of buf from `at`; returns how many belong to the body, or -1 when malformed. */
  read(buf: Buffer, at: number): number {
    let i = at
    while (i < buf.length && !this.done) {
      switch (this.state) {
        case 'size':
        case 'trailer': {
          const lf = buf.indexOf(10, i)
          const end = lf === -1 ? buf.length : lf + 1
          this.line += buf.toString('latin1', i, end)
          i = end
          if (this.line.length > MAX_LINE) return -1
          if (lf === -1) break
          if (!this.line.endsWith('\r\n')) return -1
          const line = this.line.slice(0, -2)
          this.line = ''
          if (this.state === 'trailer') {
            if (line === '') this.done = true
            break
          }
          const m = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/.exec(line)
          if (m === null) return -1
          this.left = Number.parseInt(m[1]!, 16)
          this.state = this.left === 0 ? 'trailer' : 'data'
          break
        }
        case 'data': {
          const n = Math.min(this.left, buf.length - i)
          this.parts.push(Buffer.from(buf.subarray(i, i + n))) // copied: the socket may reuse buf
          this.length += n
          this.left -= n
          i += n
          if (this.left === 0) this.state = 'data-cr'
          break
        }
        case 'data-cr':
          if (buf[i++] !== 13) return -1
          this.state = 'data-lf'
          break
        case 'data-lf':
          if (buf[i++] !== 10) return -1
          this.state = 'size'
          break
      }
    }
    return i - at
  }
}
