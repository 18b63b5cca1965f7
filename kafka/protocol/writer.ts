/**
 * A growable big-endian writer for the Kafka protocol, reused across messages: reset() keeps the
 * allocation. Varints are Kafka's zig-zag varints (as in protobuf's sint32/sint64).
 */
export class Writer {
  buf: Buffer
  pos = 0

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(initial)
  }

  reset(): this {
    this.pos = 0
    return this
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafeSlow(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  int8(v: number): this {
    this.ensure(1)
    this.buf[this.pos++] = v & 0xff
    return this
  }

  int16(v: number): this {
    this.ensure(2)
    this.buf.writeInt16BE(v, this.pos)
    this.pos += 2
    return this
  }

  int32(v: number): this {
    this.ensure(4)
    this.buf.writeInt32BE(v, this.pos)
    this.pos += 4
    return this
  }

  uint32(v: number): this {
    this.ensure(4)
    this.buf.writeUInt32BE(v >>> 0, this.pos)
    this.pos += 4
    return this
  }

  int64(v: number | bigint): this {
    this.ensure(8)
    this.buf.writeBigInt64BE(BigInt(v), this.pos)
    this.pos += 8
    return this
  }

  /** Zig-zag varint of a 32-bit signed value. */
  varint(v: number): this {
    let z = ((v << 1) ^ (v >> 31)) >>> 0
    this.ensure(5)
    while (z >= 0x80) {
      this.buf[this.pos++] = (z & 0x7f) | 0x80
      z >>>= 7
    }
    this.buf[this.pos++] = z
    return this
  }

  /** Zig-zag varlong of a safe-integer value. */
  varlong(v: number): this {
    if (v >= -0x40000000 && v < 0x40000000) return this.varint(v)
    let z = v >= 0 ? BigInt(v) * 2n : -BigInt(v) * 2n - 1n
    this.ensure(10)
    while (z >= 0x80n) {
      this.buf[this.pos++] = Number(z & 0x7fn) | 0x80
      z >>= 7n
    }
    this.buf[this.pos++] = Number(z)
    return this
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
    return this
  }

  /** INT16 length + UTF-8 bytes; null as -1. */
  string(s: string | null): this {
    if (s === null) return this.int16(-1)
    const n = Buffer.byteLength(s)
    this.int16(n)
    this.ensure(n)
    this.buf.write(s, this.pos)
    this.pos += n
    return this
  }

  /** Reserve an INT32 to fill in later (sizes, CRCs); returns its offset. */
  reserve32(): number {
    this.ensure(4)
    const at = this.pos
    this.pos += 4
    return at
  }

  result(): Buffer {
    return this.buf.subarray(0, this.pos)
  }
}

/** Bytes of a zig-zag varint, for sizes computed before writing. */
export function varintSize(v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0
  let n = 1
  while (z >= 0x80) {
    z >>>= 7
    n++
  }
  return n
}
