import { createRequire } from 'node:module'

/**
 * CRC-32C (Castagnoli), which Kafka's RecordBatch v2 uses over everything from `attributes` to
 * the end: the CPU's CRC instruction through @node-rs/crc32's prebuilt binding when it loads,
 * else slicing-by-8 tables in plain JS. A request's batches (~14 KB for 100 impressions) took
 * ~20 µs in the JS loop, 2–4 µs natively.
 */
type NativeCrc = (input: Uint8Array, initialState?: number) => number
const nativeCrc32c: NativeCrc | null = (() => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc }).crc32c
  } catch {
    return null
  }
})()

/** Whether the native CRC is in use (a test checks that it loads where adgate is built). */
export const crc32cIsNative = nativeCrc32c !== null

const POLY = 0x82f63b78
const T = Array.from({ length: 8 }, () => new Int32Array(256))
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1
  T[0]![n] = c
}
for (let n = 0; n < 256; n++) {
  let c = T[0]![n]!
  for (let s = 1; s < 8; s++) {
    c = T[0]![c & 0xff]! ^ (c >>> 8)
    T[s]![n] = c
  }
}
const [T0, T1, T2, T3, T4, T5, T6, T7] = T as [
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
]

export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  if (nativeCrc32c !== null)
    return nativeCrc32c(start === 0 && end === buf.length ? buf : buf.subarray(start, end)) >>> 0
  return crc32cJs(buf, start, end)
}

/** The plain JS CRC-32C, for platforms without the binding (and tests against it). */
export function crc32cJs(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = -1
  let i = start
  for (; i + 8 <= end; i += 8) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))
    crc =
      T7[a & 0xff]! ^
      T6[(a >>> 8) & 0xff]! ^
      T5[(a >>> 16) & 0xff]! ^
      T4[a >>> 24]! ^
      T3[buf[i + 4]!]! ^
      T2[buf[i + 5]!]! ^
      T1[buf[i + 6]!]! ^
      T0[buf[i + 7]!]!
  }
  for (; i < end; i++) crc = T0[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ -1) >>> 0
}

/**
 * The CRC-32C of bytes [start, end) of `buf` (any start ≤ from) after bytes [from, to) were
 * overwritten, from the CRC before and the bytes that were there (`old`): O(log n) instead of a
 * pass over the buffer.
 * A CRC is linear over GF(2), so crc(new) = crc(old) ^ raw(old ^ new), where raw (no initial or
 * final inversion) of a difference that is zero outside [from, to) is the raw CRC of the changed
 * bytes followed by end - to zero bytes, which is a multiplication by x^(8·(end - to)) mod P
 * (zlib's crc32_combine arithmetic). Leading zeros leave a raw CRC at 0, so [start, from) costs
 * nothing either.
 */
export function crc32cAfterChange(
  crc: number,
  buf: Uint8Array,
  from: number,
  to: number,
  old: Uint8Array,
  end: number,
): number {
  let raw = 0
  for (let i = from; i < to; i++) raw = T0[(raw ^ buf[i]! ^ old[i - from]!) & 0xff]! ^ (raw >>> 8)
  if (raw === 0) return crc >>> 0
  return (crc ^ multModP(xPow8nModP(end - to), raw)) >>> 0
}

/** a·b mod P, both polynomials bit-reflected (bit 31 is x^0), as zlib's multmodp; a ≠ 0. */
function multModP(a: number, b: number): number {
  let m = 0x80000000
  let p = 0
  for (;;) {
    if (a & m) {
      p ^= b
      if ((a & (m - 1)) === 0) break
    }
    m >>>= 1
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1
  }
  return p
}

/** x^(2^k) mod P for k = 0…31. */
const X2N = new Int32Array(32)
X2N[0] = 1 << 30 // x^1
for (let k = 1; k < 32; k++) X2N[k] = multModP(X2N[k - 1]!, X2N[k - 1]!)

/**
 * ZEROS[j][i] = x^(8·i·256^j) mod P: appending n zero bytes is then one multiplication per byte of
 * n (two for a batch of a few KB) instead of one per bit (the square-and-multiply loop was 8 µs of
 * a 15k events/s request's four stamps).
 */
const ZEROS = Array.from({ length: 4 }, (_, j) => {
  const table = new Int32Array(256)
  const step = X2N[3 + 8 * j]! // x^(8·256^j)
  table[0] = 0x80000000 | 0 // x^0
  for (let i = 1; i < 256; i++) table[i] = multModP(step, table[i - 1]!)
  return table
})

/** x^(8·n) mod P: what appending n zero bytes multiplies a raw CRC by. */
function xPow8nModP(n: number): number {
  let p = ZEROS[0]![n & 0xff]!
  for (let j = 1; j < 4; j++) {
    const byte = (n >>> (8 * j)) & 0xff
    if (byte !== 0) p = multModP(ZEROS[j]![byte]!, p)
  }
  return p
}
