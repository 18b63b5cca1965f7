import fc from 'fast-check'
import { compressFrameSync, decompressFrameSync } from 'lz4-napi'
import { describe, expect, it } from 'vitest'
import { decodeLz4Frames, Lz4Error, lz4Frame } from '../../codecs/lz4-frame.js'

// xxHash32 (seed 0), for the header and block checksums of hand-made frames, so lz4-napi's own
// decoder can confirm those frames are valid before ours reads them.
const P1 = 0x9e3779b1
const P2 = 0x85ebca77
const P3 = 0xc2b2ae3d
const P4 = 0x27d4eb2f
const P5 = 0x165667b1
const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0
const mul = (a: number, b: number) => Math.imul(a, b) >>> 0

function xxh32(buf: Buffer): number {
  let i = 0
  let h: number
  if (buf.length >= 16) {
    const v = [(P1 + P2) >>> 0, P2, 0, (0 - P1) >>> 0]
    for (; i + 16 <= buf.length; i += 16) {
      for (let k = 0; k < 4; k++)
        v[k] = mul(rotl((v[k]! + mul(buf.readUInt32LE(i + 4 * k), P2)) >>> 0, 13), P1)
    }
    h = (rotl(v[0]!, 1) + rotl(v[1]!, 7) + rotl(v[2]!, 12) + rotl(v[3]!, 18)) >>> 0
  } else {
    h = P5
  }
  h = (h + buf.length) >>> 0
  for (; i + 4 <= buf.length; i += 4) h = mul(rotl((h + mul(buf.readUInt32LE(i), P3)) >>> 0, 17), P4)
  for (; i < buf.length; i++) h = mul(rotl((h + mul(buf[i]!, P5)) >>> 0, 11), P1)
  h = mul(h ^ (h >>> 15), P2)
  h = mul(h ^ (h >>> 13), P3)
  return (h ^ (h >>> 16)) >>> 0
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

interface FrameOptions {
  blockChecksum?: boolean
  contentChecksum?: boolean
  contentSize?: boolean
}

/** An LZ4 frame of the given blocks (each stored as given: `compressed` false sets the high bit). */
function frame(
  blocks: { data: Buffer; compressed: boolean }[],
  content: Buffer,
  o: FrameOptions = {},
): Buffer {
  const flg =
    0x40 | 0x20 | (o.blockChecksum ? 0x10 : 0) | (o.contentSize ? 0x08 : 0) | (o.contentChecksum ? 0x04 : 0)
  const bd = 0x40 // 64 KiB blocks
  const descriptor = Buffer.concat([
    Buffer.from([flg, bd]),
    o.contentSize ? Buffer.from(new BigUint64Array([BigInt(content.length)]).buffer) : Buffer.alloc(0),
  ])
  const parts: Buffer[] = [u32(0x184d2204), descriptor, Buffer.from([(xxh32(descriptor) >>> 8) & 0xff])]
  for (const b of blocks) {
    parts.push(u32(b.data.length | (b.compressed ? 0 : 0x80000000)), b.data)
    if (o.blockChecksum) parts.push(u32(xxh32(b.data)))
  }
  parts.push(u32(0))
  if (o.contentChecksum) parts.push(u32(xxh32(content)))
  return Buffer.concat(parts)
}

const stored = (data: Buffer) => ({ data, compressed: false })
const compressed = (data: Buffer) => ({ data, compressed: true })

const randomBuffers = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)),
  // Highly repetitive: long matches, overlapping copies, runs past one 64 KiB block.
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 20_000 }))
    .map(([unit, times]) => Buffer.alloc(unit.length * times, Uint8Array.from(unit))),
  fc
    .array(
      fc.tuple(fc.constantFrom('ad', 'gate ', 'bid', '{"id":', '\n'), fc.integer({ min: 1, max: 300 })),
      {
        maxLength: 60,
      },
    )
    .map((parts) => Buffer.from(parts.map(([s, n]) => s.repeat(n)).join(''))),
)

describe('LZ4 frames', () => {
  it("decodes lz4-napi's compressFrameSync output exactly", () => {
    fc.assert(
      fc.property(randomBuffers, fc.boolean(), fc.boolean(), (input, blockChecksums, contentChecksum) => {
        const framed = compressFrameSync(input, { blockChecksums, contentChecksum })
        expect(decodeLz4Frames(framed, input.length).equals(input)).toBe(true)
      }),
      { numRuns: 150 },
    )
  })

  it('decodes a body larger than one block', () => {
    const input = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251))
    const framed = compressFrameSync(input)
    expect(decodeLz4Frames(framed, 1 << 20).equals(input)).toBe(true)
  })

  it('stops at maxBytes: exactly the size passes, one byte less is a too-large error', () => {
    const input = Buffer.alloc(100_000, 'a')
    const framed = compressFrameSync(input)
    expect(decodeLz4Frames(framed, 100_000).length).toBe(100_000)
    try {
      decodeLz4Frames(framed, 99_999)
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(Lz4Error)
      expect((err as Lz4Error).tooLarge).toBe(true)
    }
  })

  it('reads hand-made frames with stored (uncompressed) blocks and block and content checksums', () => {
    const a = Buffer.from('first block, stored as is. ')
    const b = Buffer.from('second block, also stored.')
    const content = Buffer.concat([a, b])
    for (const o of [
      {},
      { blockChecksum: true },
      { contentChecksum: true, contentSize: true },
      { blockChecksum: true, contentChecksum: true, contentSize: true },
    ]) {
      const f = frame([stored(a), stored(b)], content, o)
      expect(decompressFrameSync(f).equals(content)).toBe(true) // a valid frame, by lz4-napi
      expect(decodeLz4Frames(f, 1000).equals(content)).toBe(true)
    }
  })

  it('reads a hand-made compressed block with an overlapping match (a run)', () => {
    // token: 1 literal, match length 4+6; literal 'x'; offset 1 → 'x' × 11; then a last literal-only sequence.
    const block = Buffer.from([0x16, 0x78, 0x01, 0x00, 0x50, ...Buffer.from('tail!')])
    const content = Buffer.from(`${'x'.repeat(11)}tail!`)
    const f = frame([compressed(block)], content, { blockChecksum: true, contentChecksum: true })
    expect(decompressFrameSync(f).equals(content)).toBe(true)
    expect(decodeLz4Frames(f, 100).equals(content)).toBe(true)
  })

  it('reads long literal and match lengths (the 255-continuation bytes)', () => {
    const literals = Buffer.alloc(15 + 255 + 10, 'L')
    // literals 15+255+10, then offset 1 match of 4+15+255+3, then 5 literals.
    const block = Buffer.concat([
      Buffer.from([0xff, 255, 10]),
      literals,
      Buffer.from([0x01, 0x00, 255, 3]),
      Buffer.from([0x50]),
      Buffer.from('abcde'),
    ])
    const content = Buffer.concat([literals, Buffer.alloc(4 + 15 + 255 + 3, 'L'), Buffer.from('abcde')])
    const f = frame([compressed(block)], content)
    expect(decompressFrameSync(f).equals(content)).toBe(true)
    expect(decodeLz4Frames(f, 10_000).equals(content)).toBe(true)
  })

  it('skips skippable frames and reads concatenated frames', () => {
    const one = compressFrameSync(Buffer.from('one '))
    const two = compressFrameSync(Buffer.from('two'))
    const skippable = Buffer.concat([u32(0x184d2a5f), u32(3), Buffer.from('zzz')])
    expect(decodeLz4Frames(Buffer.concat([skippable, one, skippable, two]), 100).toString()).toBe('one two')
    expect(decodeLz4Frames(Buffer.alloc(0), 100).length).toBe(0)
  })

  it('refuses corrupt frames with an Lz4Error, never another exception', () => {
    const good = frame([compressed(Buffer.from([0x16, 0x78, 0x01, 0x00, 0x50, 0x61]))], Buffer.alloc(0))
    const headerLen = 4 + 2 + 1
    const cases: [string, Buffer][] = [
      ['bad magic', Buffer.concat([u32(0x184d2205), good.subarray(4)])],
      ['truncated header', good.subarray(0, 5)],
      ['truncated block', good.subarray(0, good.length - 6)],
      ['no end mark', good.subarray(0, good.length - 4)],
      [
        'unsupported version',
        Buffer.concat([good.subarray(0, 4), Buffer.from([0x80 | (good[4]! & 0x3f)]), good.subarray(5)]),
      ],
      [
        'dictionary id',
        Buffer.concat([good.subarray(0, 4), Buffer.from([good[4]! | 0x01]), good.subarray(5)]),
      ],
      ['match offset 0', frame([compressed(Buffer.from([0x10, 0x78, 0x00, 0x00, 0x00]))], Buffer.alloc(0))],
      [
        'offset before the output',
        frame([compressed(Buffer.from([0x10, 0x78, 0x05, 0x00, 0x00]))], Buffer.alloc(0)),
      ],
      ['literals past the block', frame([compressed(Buffer.from([0x50, 0x61]))], Buffer.alloc(0))],
      ['match offset cut off', frame([compressed(Buffer.from([0x10, 0x61, 0x01]))], Buffer.alloc(0))],
      ['literal length cut off', frame([compressed(Buffer.from([0xf0]))], Buffer.alloc(0))],
      ['match length cut off', frame([compressed(Buffer.from([0x1f, 0x61, 0x01, 0x00]))], Buffer.alloc(0))],
      ['skippable frame past the end', Buffer.concat([u32(0x184d2a50), u32(100), Buffer.from('x')])],
      [
        'block size past the end',
        Buffer.concat([good.subarray(0, headerLen), u32(1000), Buffer.from('abc')]),
      ],
    ]
    for (const [name, bytes] of cases) {
      expect(() => decodeLz4Frames(bytes, 1 << 20), name).toThrow(Lz4Error)
    }
  })

  it('never throws anything but Lz4Error on mutated frames, and never passes maxBytes', () => {
    fc.assert(
      fc.property(
        randomBuffers,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat({ max: 5000 }),
        (input, edits, max) => {
          const framed = Buffer.from(compressFrameSync(input))
          for (const [at, byte] of edits) framed[at % framed.length] = byte
          try {
            expect(decodeLz4Frames(framed, max).length).toBeLessThanOrEqual(max)
          } catch (err) {
            if (!(err instanceof Lz4Error)) throw err
          }
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('encodeLz4Frame (Kafka batches, with the native block compressor)', () => {
  it('writes frames that lz4-napi and this decoder both read back exactly', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200_000 }),
          fc
            .array(fc.constantFrom(...'adgate event '.split('')), { maxLength: 150_000 })
            .map((c) => Buffer.from(c.join(''))),
        ),
        (input) => {
          const framed = lz4Frame(input)
          expect(decompressFrameSync(framed).equals(Buffer.from(input))).toBe(true)
          expect(decodeLz4Frames(framed, 1 << 20).equals(Buffer.from(input))).toBe(true)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('compresses text well and stores incompressible blocks as they are', () => {
    const text = Buffer.from('impression,cmp-001,USD,'.repeat(10_000))
    expect(lz4Frame(text).length).toBeLessThan(text.length / 10)
    const noise = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 2654435761) >>> 24))
    expect(lz4Frame(noise).length).toBeLessThanOrEqual(noise.length + 7 + 4 * 3 + 4)
  })

  it('does not grow native memory per call (lz4-napi leaked ~2 KB a call)', () => {
    const input = Buffer.alloc(100_000, 7)
    for (let i = 0; i < 2000; i++) lz4Frame(input) // warm up allocators
    const before = process.memoryUsage().rss
    for (let i = 0; i < 20_000; i++) lz4Frame(input)
    // 20k calls at lz4-napi's rate would add ~40 MB; allow generous allocator slack.
    expect(process.memoryUsage().rss - before).toBeLessThan(20 * 1024 * 1024)
  })
})
