import { createRequire } from 'node:module'

/**
 * LZ4 frames (LZ4 Frame Format 1.6.x over the LZ4 Block Format), for request bodies
 * (Content-Encoding: lz4) and Kafka record batches (compression type 3).
 *
 * Decoding is plain JS and bounded: it stops at `maxBytes` (LZ4 expands up to 255×, so a 1 MiB
 * body must not become 255 MiB before a limit is checked) and checks every offset and length.
 * Encoding wraps the `lz4` package's native block compressor, which writes into a buffer we own.
 * lz4-napi was measured leaking ~2 KB of native memory per call (compressFrameSync and
 * compressSync alike), which grew the gateway's RSS by megabytes a second under load.
 *
 *   frame  magic 0x184D2204 (LE) | FLG | BD | [content size u64] | [dict id u32] | HC
 *          block* (u32 size, high bit = stored uncompressed; 0 = end) [block checksum u32]
 *          [content checksum u32]
 *   skippable frames (magic 0x184D2A50..5F) are skipped.
 * Checksums are not verified: HTTP and TCP already protect the bytes in transit.
 */
export class Lz4Error extends Error {
  constructor(
    message: string,
    readonly tooLarge = false,
  ) {
    super(message)
  }
}

const MAGIC = 0x184d2204

export function decodeLz4Frames(src: Buffer, maxBytes: number): Buffer {
  const out = new Output(maxBytes)
  let ip = 0
  while (ip < src.length) {
    need(src, ip, 4)
    const magic = src.readUInt32LE(ip)
    ip += 4
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      need(src, ip, 4)
      ip += 4 + src.readUInt32LE(ip)
      continue
    }
    if (magic !== MAGIC)
      throw new Lz4Error(`not an LZ4 frame (magic ${magic.toString(16)} at byte ${ip - 4})`)
    need(src, ip, 2)
    const flg = src[ip]!
    if (flg >> 6 !== 1) throw new Lz4Error('unsupported LZ4 frame version')
    const blockChecksum = (flg & 0x10) !== 0
    const contentSize = (flg & 0x08) !== 0
    const contentChecksum = (flg & 0x04) !== 0
    const dictId = (flg & 0x01) !== 0
    if (dictId) throw new Lz4Error('LZ4 frames with a dictionary are not supported')
    ip += 2 + (contentSize ? 8 : 0) + 1 // FLG, BD, content size, header checksum
    for (;;) {
      need(src, ip, 4)
      const word = src.readUInt32LE(ip)
      ip += 4
      if (word === 0) break
      const size = word & 0x7fffffff
      need(src, ip, size)
      if (word & 0x80000000) out.copy(src, ip, size)
      else decodeBlock(src, ip, ip + size, out)
      ip += size + (blockChecksum ? 4 : 0)
    }
    ip += contentChecksum ? 4 : 0
  }
  if (ip > src.length) throw new Lz4Error('truncated LZ4 frame')
  return out.result()
}

function need(src: Buffer, ip: number, n: number): void {
  if (ip + n > src.length) throw new Lz4Error('truncated LZ4 frame')
}

function decodeBlock(src: Buffer, start: number, end: number, out: Output): void {
  let ip = start
  while (ip < end) {
    const token = src[ip++]!
    let literals = token >> 4
    if (literals === 15) {
      let b: number
      do {
        if (ip >= end) throw new Lz4Error('corrupt LZ4 block: literal length runs past the block')
        b = src[ip++]!
        literals += b
      } while (b === 255)
    }
    if (ip + literals > end) throw new Lz4Error('corrupt LZ4 block: literals run past the block')
    out.copy(src, ip, literals)
    ip += literals
    if (ip === end) return // the last sequence holds literals only
    if (ip + 2 > end) throw new Lz4Error('corrupt LZ4 block: truncated match offset')
    const offset = src[ip]! | (src[ip + 1]! << 8)
    ip += 2
    // The literal length's extension again, inline: a helper would return two numbers per sequence.
    let match = token & 15
    if (match === 15) {
      let b: number
      do {
        if (ip >= end) throw new Lz4Error('corrupt LZ4 block: match length runs past the block')
        b = src[ip++]!
        match += b
      } while (b === 255)
    }
    out.repeat(offset, match + 4)
  }
}

/** Growable output that refuses to pass the limit. */
class Output {
  private buf: Buffer
  private len = 0
  constructor(private readonly max: number) {
    this.buf = Buffer.allocUnsafe(Math.min(max, 64 * 1024))
  }
  private reserve(n: number): void {
    const needed = this.len + n
    if (needed > this.max) throw new Lz4Error(`the decompressed body is larger than ${this.max} bytes`, true)
    if (needed <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.min(this.max, Math.max(needed, this.buf.length * 2)))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }
  copy(src: Buffer, from: number, n: number): void {
    this.reserve(n)
    src.copy(this.buf, this.len, from, from + n)
    this.len += n
  }
  repeat(offset: number, n: number): void {
    if (offset === 0 || offset > this.len)
      throw new Lz4Error('corrupt LZ4 block: match offset outside the output')
    this.reserve(n)
    const buf = this.buf
    let from = this.len - offset
    // Byte by byte: a match may overlap the bytes it produces (offset < length repeats a run).
    if (offset >= n) buf.copy(buf, this.len, from, from + n)
    else for (let i = 0; i < n; i++) buf[this.len + i] = buf[from++]!
    this.len += n
  }
  result(): Buffer {
    return this.buf.subarray(0, this.len)
  }
}

interface NativeLz4 {
  compress(input: Uint8Array, output: Uint8Array): number
  /** LZ4_decompress_safe: bytes written, negative when the block is corrupt or `output` too small. */
  uncompress(input: Uint8Array, output: Uint8Array): number
  compressBound(size: number): number
}

const require = createRequire(import.meta.url)
let loaded: NativeLz4 | undefined
// Loaded on first use, so a missing build is reported by the start-up check, not an import crash.
const native = (): NativeLz4 => {
  loaded ??= require('lz4/build/Release/lz4.node') as NativeLz4
  return loaded
}

/** Frame header: magic, FLG 0x60 (version 1, independent blocks, no checksums), BD 0x40 (64 KiB blocks), HC. */
const FRAME_HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82])
const BLOCK_SIZE = 64 * 1024
const UNCOMPRESSED = 0x80000000

/** Grows as needed; the encoder's output, reused by the caller across frames. */
export interface FrameSink {
  ensure(n: number): void
  buf: Buffer
  pos: number
}

/** Append one LZ4 frame holding `input` to `out`. */
export function encodeLz4Frame(input: Uint8Array, out: FrameSink): void {
  out.ensure(
    FRAME_HEADER.length + native().compressBound(input.length) + 8 * Math.ceil(input.length / BLOCK_SIZE + 1),
  )
  out.buf.set(FRAME_HEADER, out.pos)
  out.pos += FRAME_HEADER.length
  for (let at = 0; at < input.length; at += BLOCK_SIZE) {
    const block = input.subarray(at, Math.min(at + BLOCK_SIZE, input.length))
    const sizeAt = out.pos
    out.pos += 4
    const n = native().compress(block, out.buf.subarray(out.pos))
    if (n > 0 && n < block.length) {
      out.buf.writeUInt32LE(n, sizeAt)
      out.pos += n
    } else {
      // Incompressible: store it (the high bit of the size says so).
      out.buf.writeUInt32LE((block.length | UNCOMPRESSED) >>> 0, sizeAt)
      out.buf.set(block, out.pos)
      out.pos += block.length
    }
  }
  out.buf.writeUInt32LE(0, out.pos) // end mark
  out.pos += 4
}

/**
 * Decode one frame as encodeLz4Frame writes them (FLG 0x60, BD 0x40: independent blocks of at
 * most 64 KiB, no checksums), natively, appending to `out`.
 * For bytes adgate wrote itself (record batches it merges); false for any other frame or a
 * corrupt block. Untrusted input goes through decodeLz4Frames, which bounds the output.
 */
export function decodeOwnLz4Frame(src: Buffer, out: FrameSink): boolean {
  if (src.length < FRAME_HEADER.length || src.compare(FRAME_HEADER, 0, 6, 0, 6) !== 0) return false
  let ip = FRAME_HEADER.length
  for (;;) {
    if (ip + 4 > src.length) return false
    const word = src.readUInt32LE(ip)
    ip += 4
    if (word === 0) return ip === src.length
    const size = word & 0x7fffffff
    if (ip + size > src.length || size > BLOCK_SIZE) return false
    const block = src.subarray(ip, ip + size)
    ip += size
    if (word & UNCOMPRESSED) {
      out.ensure(size)
      out.buf.set(block, out.pos)
      out.pos += size
      continue
    }
    // Straight into the output (a block is at most 64 KiB), not through a scratch block.
    out.ensure(BLOCK_SIZE)
    const n = native().uncompress(block, out.buf.subarray(out.pos, out.pos + BLOCK_SIZE))
    if (n < 0) return false
    out.pos += n
  }
}

/** One frame as a new Buffer, for callers that want the whole frame at once. */
export function lz4Frame(input: Uint8Array): Buffer {
  const sink = new GrowableBuffer(input.length + 64)
  encodeLz4Frame(input, sink)
  return sink.buf.subarray(0, sink.pos)
}

class GrowableBuffer implements FrameSink {
  buf: Buffer
  pos = 0
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.pos + n, this.buf.length * 2))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }
}
