import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { NativeTranscoder } from '../../decoders/native-addon.js'
import { describeSchema } from '../../decoders/native-schema.js'
import {
  nativeCounts,
  nativeStatus,
  SPAN,
  type TranscodeResult,
  transcodeJson,
  transcodeJsonJs,
  transcodeJsonNative,
} from '../../decoders/transcode.js'
import { EVENT_INFO, EVENT_TYPES, type EventType } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { decodeWire } from '../../events/wire.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents, generateFunnel } from '../../generator/funnel.js'
import { options, stamped } from '../support/events.js'
import { expectSamePaths, samePaths } from '../support/transcode.js'

/**
 * The native JSON → Avro transcoder (native/) against the JS reference (decodeJson + avsc):
 * byte-identical values and keys, identical rejections and whole-body errors, on generated,
 * mutated and hostile input. Every test in test/decoders/json.test.ts runs on both paths too
 * (test/support/decode.ts).
 */
const RUNS = Number(process.env.NATIVE_FUZZ_RUNS ?? 1500)

describe('native transcoder', () => {
  it('is built and loaded (npm ci builds it; the JS path is only the fallback)', () => {
    expect(nativeStatus()).toEqual({ native: true, reason: '' })
  })

  it('agrees with the JS path on whole generated funnels, every type, JSON and NDJSON', () => {
    const funnel = generateFunnel({ seed: 7, bids: 3000 })
    for (const type of EVENT_TYPES) {
      const events = type === 'bid' ? funnel.bid.slice(0, 500) : funnel[type]
      if (events.length === 0) continue
      for (const encoding of ['json', 'ndjson'] as const) {
        const body = encodeEvents(type, events, encoding)
        const r = expectSamePaths(body, encoding === 'ndjson', options(type))
        if (!r.ok) throw new Error(r.error.detail)
        expect(r.count).toBe(events.length)
        // And the values are the generated events, stamped.
        const decoded = valuesOf(r).map((v) => decodeWire(v).value)
        expect(decoded).toEqual(events.map(stamped))
      }
    }
  })

  it('encodes impressions natively without deferring any to the JS side', () => {
    // Deferring is correct but slow: the generated traffic must take the fast path whole.
    const body = encodeEvents('impression', generateEvents('impression', 200, 3), 'json')
    const r = transcodeJsonNative(body, false, options('impression'))
    expect(r).not.toBeNull()
    expect(r!.ok && r!.count).toBe(200)
    expect(nativeOnlyCount(body)).toBe(200)
  })

  it('returns projected fields as values for data-quality rules, equal on both paths', () => {
    const events = generateEvents('impression', 50, 5)
    events[3]!.cost_micros = 1.0e3 // JSON.stringify writes 1000: still native
    const body = Buffer.from(
      `[${events.map((e, i) => (i === 7 ? JSON.stringify({ ...e, country: 'Germany' }) : JSON.stringify(e))).join(',')}]`,
    )
    const projection = ['country', 'cost_micros', 'device_type', 'source', 'creative_id']
    const r = expectSamePaths(body, false, options('impression'), projection)
    if (!r.ok) throw new Error(r.error.detail)
    expect(r.rejects.map((x) => x.index)).toEqual([7])
    expect(r.views![0]).toEqual({
      country: events[0]!.country,
      cost_micros: events[0]!.cost_micros,
      device_type: events[0]!.device_type,
      source: 'test-source',
      creative_id: events[0]!.creative_id,
    })
    // Nested fields cannot be projected natively: such bodies take the JS path, with the same views.
    const bids = encodeEvents('bid', generateEvents('bid', 5, 2), 'json')
    const before = nativeCounts.encoded
    const viaJs = transcodeJson(bids, false, options('bid'), ['imp', 'id'])
    expect(nativeCounts.encoded).toBe(before)
    expect(viaJs.ok && viaJs.views!.map((v) => v.id)).toEqual(generateEvents('bid', 5, 2).map((e) => e.id))
  })

  it('returns each projected string as sent, however its bytes meet the cache of repeated strings', () => {
    // Same length, first, middle and last bytes (one cache slot), non-ASCII, empty, over 32 bytes.
    const domains = [
      'a1b2c',
      'a9b8c',
      'a1b2c',
      'aéb2c',
      'aéb2c',
      '',
      'x'.repeat(40),
      'x'.repeat(39) + 'y',
      'a9b8c',
    ]
    const events = generateEvents('impression', domains.length, 11).map((e, i) => ({
      ...e,
      site_domain: domains[i]!,
    }))
    const body = encodeEvents('impression', events, 'json')
    const r = transcodeJsonNative(body, false, options('impression'), ['site_domain', 'country'])
    if (!r?.ok) throw new Error('not transcoded')
    expect(r.views!.map((v) => v.site_domain)).toEqual(domains)
    expect(r.views!.map((v) => v.country)).toEqual(events.map((e) => (e as Record<string, unknown>).country))
    expect(nativeOnlyCount(body)).toBe(domains.length)
  })

  it('writes its output into a given buffer when it fits, and into a new one when not: the same bytes', () => {
    const { binding } = createRequire(import.meta.url)('@adgate/native') as {
      binding: { Transcoder: new (d: unknown) => NativeTranscoder }
    }
    const t = new binding.Transcoder(describeSchema(EVENT_SCHEMAS.impression, 'auction_id', ['country']))
    const body = encodeEvents('impression', generateEvents('impression', 20, 6), 'json')
    const fresh = t.transcode(body, false, 100, 1_795_000_000_000, 's')!
    expect(fresh.outLength).toBeUndefined()
    const into = Buffer.alloc(fresh.out!.length + 10, 0xee)
    const written = t.transcode(body, false, 100, 1_795_000_000_000, 's', into)!
    expect(written.out).toBeUndefined()
    expect(written.outLength).toBe(fresh.out!.length)
    expect(into.subarray(0, written.outLength)).toEqual(fresh.out)
    expect(into.subarray(written.outLength)).toEqual(Buffer.alloc(10, 0xee))
    expect(written.meta).toEqual(fresh.meta)
    expect(written.projected).toEqual(fresh.projected)
    const small = Buffer.alloc(fresh.out!.length - 1)
    const over = t.transcode(body, false, 100, 1_795_000_000_000, 's', small)!
    expect(over.out).toEqual(fresh.out)
    expect(small).toEqual(Buffer.alloc(small.length))
  })

  it("reuses the thread's output buffer from body to body, growing it, with every result right", () => {
    // Over the first buffer's 64 KiB (a fresh output, then a bigger buffer), under it, over again.
    for (const n of [400, 3, 900, 50, 400]) {
      const events = generateEvents('impression', n, n)
      const r = expectSamePaths(
        encodeEvents('impression', events, 'json'),
        false,
        options('impression', 1000),
      )
      if (!r.ok) throw new Error(r.error.detail)
      expect(valuesOf(r).map((v) => decodeWire(v).value)).toEqual(events.map(stamped))
    }
  })

  it('agrees on generated events with mutated values, keys, order and duplicates (property)', () => {
    fc.assert(
      fc.property(eventsBody(), fc.boolean(), ({ type, body, ndjson, maxEvents }, project) =>
        samePaths(body, ndjson, options(type, maxEvents), project ? PROJECTIONS[type] : undefined),
      ),
      { numRuns: RUNS },
    )
  })

  it('agrees on mutated JSON text: number spellings, escapes, truncation, byte flips (property)', () => {
    fc.assert(
      fc.property(textMutatedBody(), ({ type, body, ndjson }) => samePaths(body, ndjson, options(type, 40))),
      { numRuns: RUNS },
    )
  })

  it('never crashes and agrees on arbitrary bytes and JSON values (fuzz)', () => {
    const types = fc.constantFrom(...EVENT_TYPES)
    fc.assert(
      fc.property(types, fc.uint8Array({ maxLength: 600 }), fc.boolean(), (type, bytes, ndjson) =>
        samePaths(Buffer.from(bytes), ndjson, options(type, 40)),
      ),
      { numRuns: RUNS },
    )
    fc.assert(
      fc.property(types, fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (type, value, ndjson) =>
        samePaths(Buffer.from(JSON.stringify(value) ?? 'null'), ndjson, options(type, 40)),
      ),
      { numRuns: RUNS },
    )
  })

  it('the addon itself survives arbitrary bytes, with no UTF-8 check in front of it (fuzz)', () => {
    // In adgate the addon only sees UTF-8 (transcode.ts checks first); here it gets anything.
    const { binding } = createRequire(import.meta.url)('@adgate/native') as {
      binding: { Transcoder: new (d: unknown) => NativeTranscoder }
    }
    const t = new binding.Transcoder(describeSchema(EVENT_SCHEMAS.impression, 'auction_id', ['country']))
    const valid = encodeEvents('impression', generateEvents('impression', 3, 4), 'ndjson')
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 1500 }).map((b) => Buffer.from(b)),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }).map((edits) => {
        const b = Buffer.from(valid)
        for (const [at, byte] of edits) b[at % b.length] = byte
        return b
      }),
    )
    fc.assert(
      fc.property(bodies, fc.boolean(), (body, ndjson) => {
        const r = t.transcode(body, ndjson, 40, 1_795_000_000_000, 's')
        if (r === undefined) return true
        // Every offset it returns lies inside its output or the body.
        for (let i = 0; i < r.meta.length; i += SPAN) {
          const [, vs, ve, ks, ke] = r.meta.subarray(i, i + SPAN)
          if (!(vs! <= ks! && ks! <= ke! && ke! <= ve! && ve! <= r.out!.length)) return false
        }
        for (let i = 0; i < r.deferred.length; i += 3)
          if (r.deferred[i + 1]! > r.deferred[i + 2]! || r.deferred[i + 2]! > body.length) return false
        for (const p of r.projected ?? []) if (p >= r.out!.length) return false
        return true
      }),
      { numRuns: RUNS * 4 },
    )
  })

  it('agrees on hostile bodies: deep nesting, huge numbers, NUL bytes, bad UTF-8, BOM, empty', () => {
    const imp = JSON.stringify(generateEvents('impression', 1, 1)[0])
    const withField = (raw: string) => `${imp.slice(0, -1)},"x":${raw}}`
    const bodies = [
      '',
      ' ',
      '[]',
      '{}',
      'null',
      '5',
      '[1,2]',
      `\uFEFF${imp}`,
      `${imp}\u0000`,
      `[${imp},${imp}`,
      `[${imp}]]`,
      `${imp} ${imp}`,
      imp.replace('"cost_micros":', '"cost_micros":1e400,"y":'),
      imp.replace(/"cost_micros":\d+/, '"cost_micros":123456789012345678901234567890'),
      imp.replace(/"cost_micros":\d+/, '"cost_micros":-0'),
      imp.replace(/"cost_micros":\d+/, '"cost_micros":9007199254740993'),
      withField('['.repeat(5000) + ']'.repeat(5000)),
      withField('['.repeat(100_000)),
      withField('{"a":'.repeat(2000) + '1' + '}'.repeat(2000)),
      withField(`"${'\\u0000'.repeat(50)}"`),
      withField('"\\ud800"'),
      withField('"\\udc00\\ud800"'),
      withField('1.7976931348623157e309'),
      withField('-'),
      withField('01'),
      withField('tru'),
      withField('nul'),
      withField(`"${'é'.repeat(5000)}"`),
      `${imp}\n\n${imp}\r\n   \n${imp}`,
    ]
    for (const text of bodies)
      for (const ndjson of [false, true]) {
        expectSamePaths(Buffer.from(text), ndjson, options('impression', 40))
        expectSamePaths(Buffer.from(text), ndjson, options('impression', 1))
      }
    // Not UTF-8: overlong, lone continuation, truncated sequence, surrogate encoded in UTF-8.
    for (const bad of [[0xc0, 0xaf], [0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80]]) {
      const body = Buffer.concat([
        Buffer.from(imp.slice(0, 20)),
        Buffer.from(bad),
        Buffer.from(imp.slice(20)),
      ])
      for (const ndjson of [false, true]) expectSamePaths(body, ndjson, options('impression'))
    }
  })

  it('setNativeEnabled(false) (ADGATE_NATIVE=0) makes a thread use the JS decoder, saying why; the environment plays no part', async () => {
    const moduleUrl = new URL('../../dist/decoders/transcode.js', import.meta.url).href
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      import(workerData.moduleUrl).then(({ nativeStatus, setNativeEnabled }) => {
        setNativeEnabled(workerData.native)
        parentPort.postMessage(nativeStatus())
      })`
    const statusIn = (native: boolean, env: NodeJS.ProcessEnv) =>
      new Promise((resolve, reject) => {
        const w = new Worker(source, { eval: true, workerData: { moduleUrl, native }, env })
        w.once('message', (m) => {
          resolve(m)
          void w.terminate()
        })
        w.once('error', reject)
      })
    expect(await statusIn(false, process.env)).toEqual({ native: false, reason: 'ADGATE_NATIVE=0' })
    expect(await statusIn(true, { ...process.env, ADGATE_NATIVE: '0' })).toEqual({ native: true, reason: '' })
  })

  // The pool terminates a worker whose task is over ADGATE_DECODE_TIMEOUT_MS. Terminated inside the
  // addon, its next N-API call fails, and node-addon-api made that a fatal error of the whole
  // gateway (FATAL ERROR Error::New): inside transcode() (fixed in 36acc9c), then inside the
  // construction of a transcoder, which a thread does on its first body of a type and after a
  // rules change. In a child process, so an abort fails this test, not the runner.
  it.each([
    ['transcoding', 'for (;;) t.transcodeJsonNative(body, false, options)'],
    ['building a transcoder', 'for (;;) new Transcoder(description)'],
  ])(
    'a worker thread terminated while %s ends alone, never the process',
    (_, loop) => {
      const dist = (path: string) => new URL(`../../dist/${path}`, import.meta.url).href
      const workerData = {
        modules: [
          'decoders/transcode.js',
          'decoders/native-addon.js',
          'decoders/native-schema.js',
          'events/schemas.js',
        ].map(dist),
        options: options('impression'),
        keyField: EVENT_INFO.impression.keyField,
      }
      const generator = [dist('generator/encode.js'), dist('generator/funnel.js')]
      const script = `
      import { Worker } from 'node:worker_threads'
      const source = \`
        import('node:worker_threads').then(async ({ parentPort, workerData }) => {
          const [t, a, s, schemas] = await Promise.all(workerData.modules.map((m) => import(m)))
          const { options, keyField } = workerData
          const body = Buffer.from(workerData.body)
          const Transcoder = a.nativeAddon().addon.Transcoder
          const description = s.describeSchema(schemas.EVENT_SCHEMAS.impression, keyField, ['country'])
          parentPort.postMessage('running')
          ${loop}
        })\`
      const [e, f] = await Promise.all(${JSON.stringify(generator)}.map((m) => import(m)))
      const body = e.encodeEvents('impression', f.generateEvents('impression', 4000, 5), 'json')
      const workerData = { ...${JSON.stringify(workerData)}, body }
      for (let i = 0; i < 40; i++) {
        const w = new Worker(source, { eval: true, workerData })
        await new Promise((resolve) => w.once('message', resolve))
        await new Promise((resolve) => setTimeout(resolve, 1 + (i % 7)))
        await w.terminate()
      }
      process.stdout.write('survived')`
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 240_000,
      })
      expect(r.stderr).not.toMatch(/FATAL/)
      expect({ status: r.status, signal: r.signal, stdout: r.stdout }).toEqual({
        status: 0,
        signal: null,
        stdout: 'survived',
      })
    },
    300_000,
  )

  it('loads and runs in several worker threads at once, and again after they exit', async () => {
    const body = encodeEvents('impression', generateEvents('impression', 300, 9), 'ndjson')
    const expected = digest(transcodeJsonJs(body, true, options('impression')))
    const moduleUrl = new URL('../../dist/decoders/transcode.js', import.meta.url).href
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { createHash } = require('node:crypto')
      import(workerData.moduleUrl).then(({ transcodeJsonNative, SPAN }) => {
        let last = ''
        for (let i = 0; i < 200; i++) {
          const r = transcodeJsonNative(Buffer.from(workerData.body), true, workerData.options)
          const h = createHash('sha256')
          for (let e = 0; e < r.count; e++) {
            const s = e * SPAN
            h.update(r.buffer.subarray(r.spans[s + 1], r.spans[s + 2]))
            h.update(r.buffer.subarray(r.spans[s + 3], r.spans[s + 4]))
          }
          last = h.digest('hex')
        }
        parentPort.postMessage(last)
      })`
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        Array.from(
          { length: 4 },
          () =>
            new Promise<string>((resolve, reject) => {
              const w = new Worker(source, {
                eval: true,
                workerData: { moduleUrl, body, options: options('impression') },
              })
              w.once('message', (m) => {
                resolve(m as string)
                void w.terminate()
              })
              w.once('error', reject)
            }),
        ),
      )
      expect(results).toEqual([expected, expected, expected, expected])
    }
  })
})

function valuesOf(r: TranscodeResult): Buffer[] {
  if (!r.ok) return []
  const out: Buffer[] = []
  for (let i = 0; i < r.count; i++)
    out.push(r.buffer.subarray(r.spans[i * SPAN + 1]!, r.spans[i * SPAN + 2]!))
  return out
}

function digest(r: TranscodeResult): string {
  const h = createHash('sha256')
  if (!r.ok) return ''
  for (let e = 0; e < r.count; e++) {
    const s = e * SPAN
    h.update(r.buffer.subarray(r.spans[s + 1]!, r.spans[s + 2]!))
    h.update(r.buffer.subarray(r.spans[s + 3]!, r.spans[s + 4]!))
  }
  return h.digest('hex')
}

// How many events the addon encoded itself: the JS side must not have been needed.
function nativeOnlyCount(body: Buffer, type: EventType = 'impression', ndjson = false): number {
  const before = { ...nativeCounts }
  const r = transcodeJsonNative(body, ndjson, options(type))
  if (
    nativeCounts.deferred !== before.deferred ||
    nativeCounts.wholeBodyFallbacks !== before.wholeBodyFallbacks
  )
    return -1
  return r?.ok ? nativeCounts.encoded - before.encoded : -1
}

// The top-level scalar fields the shipped data-quality rules read, per type (their nested bid fields
// cannot be projected natively: such bodies take the JS path, tested above).
const PROJECTIONS: Record<EventType, string[]> = {
  impression: [
    'event_time',
    'ingest_time',
    'cost_micros',
    'currency',
    'country',
    'device_type',
    'site_domain',
  ],
  click: ['event_time', 'ingest_time', 'user_agent', 'landing_url'],
  conversion: ['event_time', 'ingest_time', 'currency', 'value_micros'],
  bid: ['event_time', 'bid_price_micros', 'campaign_id'],
}

const SPECIAL_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 31,
  2 ** 53,
  -(2 ** 53) + 1,
  2 ** 60,
  -0,
  '',
  'x',
  'a'.repeat(64),
  'a'.repeat(65),
  'é'.repeat(64),
  '😀'.repeat(32),
  '😀'.repeat(33),
  '\ud800',
  'US',
  'USA',
  'MOBILE',
  'mobile',
  '2026-11-21T10:00:00Z',
  '2026-02-30T10:00:00Z',
  '1795000000000',
  [],
  [1],
  {},
  { a: [1, { b: null }] },
]

interface Body {
  type: EventType
  body: Buffer
  ndjson: boolean
  maxEvents: number
}

/** Generated events with object-level mutations, as an object, an array or NDJSON. */
function eventsBody(): fc.Arbitrary<Body> {
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(...SPECIAL_VALUES) }),
    fc.record({ op: fc.constant('setAny' as const), at: fc.nat(), value: fc.jsonValue({ maxDepth: 3 }) }),
    fc.record({
      op: fc.constant('extra' as const),
      name: fc.string({ maxLength: 8 }),
      value: fc.jsonValue({ maxDepth: 3 }),
    }),
    fc.record({ op: fc.constant('shuffle' as const), seed: fc.nat() }),
    fc.record({
      op: fc.constant('duplicate' as const),
      at: fc.nat(),
      value: fc.constantFrom(...SPECIAL_VALUES),
    }),
  )
  return fc
    .record({
      type: fc.constantFrom<EventType>('impression', 'impression', 'click', 'conversion', 'bid'),
      seed: fc.nat(1000),
      count: fc.integer({ min: 1, max: 6 }),
      mutations: fc.array(fc.array(mutation, { maxLength: 3 }), { maxLength: 6 }),
      shape: fc.constantFrom('object', 'array', 'ndjson'),
      maxEvents: fc.constantFrom(3, 40),
    })
    .map(({ type, seed, count, mutations, shape, maxEvents }) => {
      const events = generateEvents(type, shape === 'object' ? 1 : count, seed)
      const texts = events.map((e, i) => {
        let entries = Object.entries(e)
        const extra: string[] = []
        for (const m of mutations[i] ?? []) {
          if (entries.length === 0) break
          const at = 'at' in m ? m.at % entries.length : 0
          if (m.op === 'delete') entries.splice(at, 1)
          else if (m.op === 'set' || m.op === 'setAny') entries[at] = [entries[at]![0], m.value]
          else if (m.op === 'extra') entries.push([m.name, m.value])
          else if (m.op === 'shuffle') entries = shuffle(entries, m.seed)
          else if (m.op === 'duplicate')
            extra.push(`${JSON.stringify(entries[at]![0])}:${JSON.stringify(m.value)}`)
        }
        const text = JSON.stringify(Object.fromEntries(entries))
        return extra.length === 0
          ? text
          : `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}${extra.join(',')}}`
      })
      const ndjson = shape === 'ndjson'
      const body = shape === 'object' ? texts[0]! : ndjson ? texts.join('\n') : `[${texts.join(',')}]`
      return { type, body: Buffer.from(body), ndjson, maxEvents }
    })
}

function shuffle<T>(items: T[], seed: number): T[] {
  const out = items.slice()
  let s = seed + 1
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const NUMBER_SPELLINGS = [
  '1.0',
  '1e3',
  '1E+2',
  '-0',
  '-0.0',
  '0.5e1',
  '1e400',
  '-1e400',
  '18446744073709551616',
  '00',
  '1.',
  '.5',
]
const STRING_SPELLINGS = [
  '"\\u00e9"',
  '"\\ud83d\\ude00"',
  '"\\ud800"',
  '"\\/"',
  '"\\n"',
  '"\\x"',
  '"a\u0001b"',
  '""',
]

/** Generated bodies with text-level mutations: number and string spellings, truncation, bytes. */
function textMutatedBody(): fc.Arbitrary<Body> {
  const mutation = fc.oneof(
    fc.record({
      op: fc.constant('number' as const),
      at: fc.nat(),
      with: fc.constantFrom(...NUMBER_SPELLINGS),
    }),
    fc.record({
      op: fc.constant('string' as const),
      at: fc.nat(),
      with: fc.constantFrom(...STRING_SPELLINGS),
    }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({
      op: fc.constant('byte' as const),
      at: fc.nat(),
      byte: fc.constantFrom(
        0x00,
        0x22,
        0x2c,
        0x3a,
        0x5b,
        0x5d,
        0x7b,
        0x7d,
        0x5c,
        0x0a,
        0x20,
        0x80,
        0xff,
        0x31,
      ),
    }),
    fc.record({
      op: fc.constant('insert' as const),
      at: fc.nat(),
      text: fc.constantFrom(' ', '\n', ',', '\r\n', '\uFEFF', '\t'),
    }),
  )
  return fc
    .record({
      type: fc.constantFrom<EventType>('impression', 'click', 'conversion', 'bid'),
      seed: fc.nat(1000),
      count: fc.integer({ min: 1, max: 4 }),
      ndjson: fc.boolean(),
      mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }),
    })
    .map(({ type, seed, count, ndjson, mutations }) => {
      const events = generateEvents(type, count, seed)
      let body = encodeEvents(type, events, ndjson ? 'ndjson' : 'json')
      for (const m of mutations) {
        const text = body.toString('latin1')
        if (m.op === 'number' || m.op === 'string') {
          const re = m.op === 'number' ? /-?\d+(\.\d+)?/g : /"(?:[^"\\]|\\.)*"/g
          const spots = [...text.matchAll(re)]
          if (spots.length === 0) continue
          const spot = spots[m.at % spots.length]!
          body = Buffer.concat([
            body.subarray(0, spot.index),
            Buffer.from(m.with),
            body.subarray(spot.index! + spot[0].length),
          ])
        } else if (m.op === 'truncate') body = body.subarray(0, m.at % (body.length + 1))
        else if (m.op === 'byte' && body.length > 0) {
          body = Buffer.from(body)
          body[m.at % body.length] = m.byte
        } else if (m.op === 'insert') {
          const at = m.at % (body.length + 1)
          body = Buffer.concat([body.subarray(0, at), Buffer.from(m.text), body.subarray(at)])
        }
      }
      return { type, body, ndjson, maxEvents: 40 }
    })
}

describe('native transcoder: OpenRTB bids (envelope, _unknown, micros, the key request.id)', () => {
  const envelope = { event_id: 'ev-1', event_time: 1_760_000_000_000 }
  const bid = (imp: object = {}, request: object = {}) => ({
    ...envelope,
    request: { id: 'auc-1', imp: [{ id: '1', bidfloor: 0.03, ...imp }], ...request },
  })
  const ndjson = (values: readonly unknown[]) => Buffer.from(values.map((v) => JSON.stringify(v)).join('\n'))

  it('encodes generated bids natively, ext included, byte for byte as the JS path', () => {
    const lines = encodeEvents('bid', generateEvents('bid', 300, 4), 'ndjson')
      .toString()
      .split('\n')
      .filter((l) => l !== '')
    expect(lines.filter((l) => l.includes('"ext"')).length).toBeGreaterThan(50)
    const body = Buffer.from(lines.join('\n'))
    expect(nativeOnlyCount(body, 'bid', true)).toBe(lines.length)
    const r = expectSamePaths(body, true, options('bid'))
    expect(r.ok && r.count).toBe(lines.length)
  })

  it('computes bidfloor_micros as Math.round(bidfloor × 10^6), halves up, as the JS normalizer', () => {
    const floors = [
      0.03, 0, 5e-7, 1.5e-6, 2.5e-6, 1.0000005, 2.675, 123456.7890125, 1e-7, 0.49999999999999994, 1e12,
    ]
    const bids = floors.map((bidfloor) => bid({ bidfloor }))
    const before = nativeCounts.encoded
    for (const body of [ndjson(bids), Buffer.from(JSON.stringify(bids))])
      expectSamePaths(body, body[0] !== 0x5b, options('bid'))
    // All but 1e12 (10^18 micros: beyond what avsc encodes, the JS side refuses it), on both bodies.
    expect(nativeCounts.encoded - before).toBe(2 * (floors.length - 1))
  })

  it('defers what only the JS side writes: unknown keys, explicit nulls, a posted micros field, a bare request, a derived id', () => {
    const { event_id: _, ...noId } = bid()
    const bodies = [
      bid({ foo: 1 }),
      bid({}, { site: null }),
      bid({ bidfloor_micros: 30000 }),
      bid({}, { _unknown: '{}' }),
      bid().request,
      noId,
      // The envelope keeps its own (bid v3): a key beside request, an explicit null, a posted _unknown.
      { ...bid(), zzz: 1 },
      { ...bid(), campaign_id: null },
      { ...bid(), _unknown: '{}' },
    ]
    const before = nativeCounts.deferred
    const r = expectSamePaths(ndjson(bodies), true, options('bid'))
    expect(nativeCounts.deferred - before).toBe(bodies.length)
    expect(r.ok && r.count).toBe(bodies.length)
  })

  it('keys every bid by its request.id, envelope fields in any order', () => {
    const reordered = { request: bid().request, event_time: 1_760_000_000_000, event_id: 'ev-2' }
    const r = expectSamePaths(ndjson([bid(), reordered]), true, options('bid'))
    if (!r.ok) throw new Error(r.error.detail)
    for (let i = 0; i < r.count; i++)
      expect(r.buffer.subarray(r.spans[i * SPAN + 3]!, r.spans[i * SPAN + 4]!).toString()).toBe('auc-1')
  })
})

describe('native transcoder: JSON-text fields (ext) written as posted when that is JSON.stringify of them', () => {
  const line = (ext: string) =>
    `{"event_id":"ev-1","event_time":1760000000000,"request":{"id":"auc-1","imp":[{"id":"1","ext":${ext}}],"ext":${ext}}}`
  const one = (ext: string) => Buffer.from(line(ext))

  it('encodes canonical text natively and defers every other form, each as the JS path writes it', () => {
    const native = [
      '{}',
      '[]',
      '{"gpid":"/1/home","n":[0,-1,1.5,-0.25,100,123456789012345,0.000001,true,false,null]}',
      '{"s":"é ✓ \\" \\\\ \\n\\t\\b\\f\\r","__proto__":{"x":[[{}]]},"":1,"a1":"2"}',
      `${'['.repeat(33)}${']'.repeat(33)}`, // the deepest value at MAX_JSON_FIELD_DEPTH
    ]
    const deferred = [
      '{ "a": 1 }', // blanks
      '{"a":1.0}', // JS prints 1
      '{"a":1e2}', // JS prints 100
      '{"a":-0}', // JS prints 0
      '{"a":0.0000001}', // JS prints 1e-7
      '{"a":1234567890123456}', // beyond 15 digits
      '{"a":"\\u00e9"}', // JS writes é
      '{"a":"\\/"}', // JS writes /
      '{"a":1,"a":2}', // JSON.parse keeps the last
      '{"b":1,"1":2}', // V8 puts integer keys first
      '"text"', // JSON text in a string: the JS side checks it
      `${'['.repeat(34)}${']'.repeat(34)}`, // deeper than MAX_JSON_FIELD_DEPTH: refused by the JS side
    ]
    for (const ext of native) {
      expect(nativeOnlyCount(one(ext), 'bid', true), ext).toBe(1)
      expectSamePaths(one(ext), true, options('bid'))
    }
    for (const ext of deferred) {
      const before = nativeCounts.deferred
      expectSamePaths(one(ext), true, options('bid'))
      expect(nativeCounts.deferred - before, ext).toBe(1)
    }
  })

  it('agrees with the JS path on random ext values, compact or spaced (property)', () => {
    let native = 0
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.boolean(), (value, spaced) => {
        const ext = JSON.stringify({ v: value }, null, spaced ? 1 : undefined)
        const before = nativeCounts.encoded
        const same = samePaths(one(ext), true, options('bid'))
        native += nativeCounts.encoded - before
        return same
      }),
      { numRuns: RUNS },
    )
    // Random doubles print 17 digits and random strings hold control characters (\u escapes):
    // those defer; the rest of the compact ones are written natively.
    expect(native).toBeGreaterThan(RUNS / 10)
  })

  it('agrees with the JS path on ext values as OpenRTB senders write them: short decimals, ASCII, digit keys (property)', () => {
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.integer({ min: -1e9, max: 1e9 }).map((n) => n / 10 ** (Math.abs(n) % 8)),
        fc.string({ unit: fc.constantFrom('a', '1', '"', '\\', '\n', '\t', '/', 'é', '\u0001') }),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string({ unit: fc.constantFrom('k', '0', '1', '_') }), tie('value'), { maxKeys: 4 }),
      ),
    }))
    let native = 0
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 3 }), value, { maxKeys: 4 }), (ext) => {
        const before = nativeCounts.encoded
        const same = samePaths(one(JSON.stringify(ext)), true, options('bid'))
        native += nativeCounts.encoded - before
        return same
      }),
      { numRuns: RUNS },
    )
    expect(native).toBeGreaterThan(RUNS / 4)
  })
})

describe('native transcoder: deferred elements of an array body are parsed alone', () => {
  // Without _unknown (adgate's, never posted: a key the addon defers).
  const [a, b] = generateEvents('impression', 2, 9).map(({ _unknown, ...e }) => JSON.stringify(e))
  // 1.0 for an integer field: the addon defers it, the JS normalizer accepts it.
  const deferred = a!.replace(/"event_time":(\d+)/, '"event_time":$1.0')

  it('whatever the blanks and commas around them, as the JS path', () => {
    const body = Buffer.from(
      `[ \n${deferred} ,\n\t${b} , 42 ,"x,]" , null,\r\n${deferred}\t, [1,{"a":"]"}] ,${a}, ${deferred}  \n]  \n`,
    )
    const before = { ...nativeCounts }
    const r = expectSamePaths(body, false, options('impression'))
    expect(nativeCounts.wholeBodyFallbacks).toBe(before.wholeBodyFallbacks)
    expect(nativeCounts.deferred - before.deferred).toBe(7)
    expect(r.ok && r.count).toBe(5)
  })

  it('an element JSON.parse refuses past where the addon stopped reading: the whole body is malformed, as on the JS path', () => {
    const body = Buffer.from(`[${b},${deferred.replace(/}$/, ',"x":[1,,2]}')}]`)
    const r = expectSamePaths(body, false, options('impression'))
    expect(r.ok).toBe(false)
  })
})
