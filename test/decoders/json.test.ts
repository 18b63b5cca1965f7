import { describe, expect, it } from 'vitest'
import { MAX_JSON_FIELD_DEPTH } from '../../decoders/normalize.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { decode, expectError, ok, onlyReject } from '../support/decode.js'
import { INGEST_TIME, SOURCE } from '../support/events.js'

const T = Date.UTC(2026, 10, 1, 12, 30, 0)

/** The smallest impression a client can send: the required fields only. */
function impression(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_id: 'ev-1',
    event_time: T,
    impression_id: 'imp-1',
    auction_id: 'auc-1',
    campaign_id: 'cmp-001',
    cost_micros: 1500,
    ...over,
  }
}

/** What that impression becomes: every optional field filled with its schema default, stamped. */
function canonicalImpression(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...impression(),
    ingest_time: INGEST_TIME,
    source: SOURCE,
    creative_id: null,
    publisher_id: null,
    site_domain: null,
    placement_id: null,
    currency: 'USD',
    device_type: 'UNKNOWN',
    country: null,
    user_agent: null,
    ip: null,
    _unknown: null,
    ...over,
  }
}

/** An OpenRTB bid request as its sender posts it. */
function bid(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'auc-1',
    imp: [{ id: '1', banner: { w: 300, h: 250 } }],
    ...over,
  }
}

type BidEvent = { request: { ext: string; imp: { ext: string }[] } }

const json = (value: unknown) => JSON.stringify(value)
const impJson = (value: unknown) => decode('impression', 'json', json(value))
const bidJson = (value: unknown) => decode('bid', 'json', json(value))

describe('JSON body shapes', () => {
  it('decodes one object, filling defaults and stamping ingest time and source', () => {
    const r = ok(impJson(impression()))
    expect(r.rejects).toEqual([])
    expect(r.events).toEqual([canonicalImpression()])
  })

  it('decodes an array of objects in order', () => {
    const r = ok(impJson([1, 2, 3].map((i) => impression({ event_id: `ev-${i}` }))))
    expect(r.events.map((e) => (e as { event_id: string }).event_id)).toEqual(['ev-1', 'ev-2', 'ev-3'])
  })

  it('decodes NDJSON with blank lines, whitespace-only lines, CRLF and no final newline', () => {
    const body = [
      '',
      json(impression({ event_id: 'a' })),
      '   ',
      `${json(impression({ event_id: 'b' }))}\r`,
      '\t\r',
      json(impression({ event_id: 'c' })),
    ].join('\n')
    const r = ok(decode('impression', 'ndjson', body))
    expect(r.rejects).toEqual([])
    expect(r.events).toEqual(['a', 'b', 'c'].map((id) => canonicalImpression({ event_id: id })))
  })

  it('rejects a broken NDJSON line on its own, with field null and the line as raw bytes', () => {
    const lines = [
      json(impression({ event_id: 'a' })),
      '{"event_id": "b",',
      '',
      json(impression({ event_id: 'c' })),
    ]
    const r = ok(decode('impression', 'ndjson', lines.join('\n')))
    expect(r.events.map((e) => (e as { event_id: string }).event_id)).toEqual(['a', 'c'])
    expect(r.rejects).toHaveLength(1)
    // Indices count events, not lines: the blank line is not one.
    expect(r.rejects[0]).toMatchObject({ index: 1, field: null })
    expect(r.rejects[0]!.reason).toMatch(/^invalid JSON/)
    expect(r.rejects[0]!.raw.toString()).toBe('{"event_id": "b",')
  })

  it('numbers NDJSON events after blank lines so a later invalid one has its event index', () => {
    const body = `\n\n${json(impression())}\n\n${json(impression({ cost_micros: -1 }))}\n`
    const r = ok(decode('impression', 'ndjson', body))
    expect(r.rejects.map((x) => [x.index, x.field])).toEqual([[1, 'cost_micros']])
  })

  it('refuses a body that is not JSON as a whole', () => {
    for (const body of ['{"event_id": ', 'not json', '[{}, ', '']) {
      expectError(decode('impression', 'json', body), 'MALFORMED_BODY')
    }
  })

  it('refuses a top level that is neither an object nor an array', () => {
    for (const body of ['42', '"text"', 'null', 'true']) {
      expectError(decode('impression', 'json', body), 'MALFORMED_BODY')
    }
  })

  it('rejects array elements that are not objects one by one, with field null', () => {
    const r = ok(impJson([impression(), 7, null, 'x', [impression()]]))
    expect(r.events).toHaveLength(1)
    expect(r.rejects.map((x) => [x.index, x.field])).toEqual([
      [1, null],
      [2, null],
      [3, null],
      [4, null],
    ])
    expect(r.rejects[0]!.reason).toMatch(/must be an object, got number 7/)
    expect(r.rejects[3]!.reason).toMatch(/got an array/)
    expect(r.rejects[0]!.raw.toString()).toBe('7')
  })

  it('gives an array element its JSON text as raw bytes', () => {
    const bad = impression({ cost_micros: -5 })
    const r = ok(impJson([impression(), bad]))
    expect(JSON.parse(r.rejects[0]!.raw.toString())).toEqual(bad)
  })

  it('refuses an empty array and an NDJSON body of blank lines as EMPTY_BODY', () => {
    expectError(decode('impression', 'json', '[]'), 'EMPTY_BODY')
    expectError(decode('impression', 'ndjson', ''), 'EMPTY_BODY')
    expectError(decode('impression', 'ndjson', '\n \r\n\t\n'), 'EMPTY_BODY')
  })

  it('refuses more events than maxEvents, and accepts exactly maxEvents', () => {
    const three = [1, 2, 3].map((i) => impression({ event_id: `ev-${i}` }))
    expectError(decode('impression', 'json', json(three), { maxEvents: 2 }), 'TOO_MANY_EVENTS')
    expect(ok(decode('impression', 'json', json(three), { maxEvents: 3 })).events).toHaveLength(3)
    const nd = three.map(json).join('\n')
    expectError(decode('impression', 'ndjson', nd, { maxEvents: 2 }), 'TOO_MANY_EVENTS')
    // Blank lines do not count towards the limit.
    expect(ok(decode('impression', 'ndjson', `${nd}\n\n\n`, { maxEvents: 3 })).events).toHaveLength(3)
  })

  it('refuses invalid UTF-8 in JSON and NDJSON', () => {
    const body = Buffer.concat([Buffer.from('{"event_id": "'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
    expectError(decode('impression', 'json', body), 'INVALID_UTF8')
    expectError(decode('impression', 'ndjson', body), 'INVALID_UTF8')
  })

  it('accepts multi-byte UTF-8 text and keeps it', () => {
    const r = ok(impJson(impression({ creative_id: 'крео-😀' })))
    expect((r.events[0] as { creative_id: string }).creative_id).toBe('крео-😀')
  })
})

describe('JSON field checks: reason and dotted path', () => {
  it.each([
    ['cost_micros', '100', /must be an integer/],
    ['cost_micros', 1.5, /must be an integer/],
    ['cost_micros', 2 ** 53, /must be an integer/],
    ['campaign_id', 5, /must be a string, got number 5/],
    ['event_id', null, /must be a string, got null/],
    ['creative_id', {}, /must be a string, got an object/],
    ['event_time', true, /must be an integer/],
  ])('wrong type: %s = %j', (field, value, reason) => {
    const rej = onlyReject(impJson(impression({ [field]: value })))
    expect(rej.field).toBe(field)
    expect(rej.reason).toMatch(reason)
  })

  it.each(['event_id', 'impression_id', 'auction_id', 'campaign_id', 'cost_micros', 'event_time'])(
    'missing required field %s',
    (field) => {
      const input = impression()
      delete input[field]
      expect(onlyReject(impJson(input))).toEqual({ index: 0, field, reason: 'is required' })
    },
  )

  it('bounds on strings and numbers', () => {
    expect(onlyReject(impJson(impression({ event_id: '' })))).toMatchObject({
      field: 'event_id',
      reason: 'must not be empty',
    })
    expect(onlyReject(impJson(impression({ event_id: 'x'.repeat(65) })))).toMatchObject({
      field: 'event_id',
      reason: 'must be at most 64 characters, got 65',
    })
    expect(ok(impJson(impression({ event_id: 'x'.repeat(64) }))).events).toHaveLength(1)
    expect(onlyReject(impJson(impression({ cost_micros: -1 })))).toMatchObject({
      field: 'cost_micros',
      reason: 'must be ≥ 0, got -1',
    })
    expect(onlyReject(impJson(impression({ country: 'USA' })))).toMatchObject({ field: 'country' })
    expect(onlyReject(impJson(impression({ currency: 'US' })))).toMatchObject({
      field: 'currency',
      reason: 'must be at least 3 characters, got 2',
    })
  })

  it('enums', () => {
    const rej = onlyReject(impJson(impression({ device_type: 'PHONE' })))
    expect(rej.field).toBe('device_type')
    expect(rej.reason).toMatch(
      /must be one of UNKNOWN, DESKTOP, MOBILE, TABLET, CTV, OTHER, got string "PHONE"/,
    )
    const r = ok(impJson(impression({ device_type: 'CTV' })))
    expect((r.events[0] as { device_type: string }).device_type).toBe('CTV')
  })

  it.each([
    ['2026-11-01T12:30:00Z', T],
    ['2026-11-01T12:30Z', T],
    ['2026-11-01T12:30:00.250Z', T + 250],
    ['2026-11-01T14:30:00+02:00', T],
    ['2026-11-01T07:30:00-0500', T],
  ])('ISO-8601 time %s', (text, ms) => {
    const r = ok(impJson(impression({ event_time: text })))
    expect((r.events[0] as { event_time: number }).event_time).toBe(ms)
  })

  it.each([
    ['2026-11-01T12:30:00', /ISO-8601 time with zone/],
    ['2026-11-01', /ISO-8601 time with zone/],
    ['1793536200000', /ISO-8601 time with zone/],
    ['2026-13-01T00:00:00Z', /is not a valid time/],
    ['2026-11-01T24:30:00Z', /is not a valid time/],
  ])('refuses the time %s', (text, reason) => {
    const rej = onlyReject(impJson(impression({ event_time: text })))
    expect(rej.field).toBe('event_time')
    expect(rej.reason).toMatch(reason)
  })

  it('regression: a day past the end of its month is refused, not rolled into the next month', () => {
    for (const text of ['2026-02-30T00:00:00Z', '2026-04-31T00:00:00Z', '2025-02-29T00:00:00Z']) {
      expect(onlyReject(impJson(impression({ event_time: text })))).toMatchObject({
        field: 'event_time',
        reason: expect.stringMatching(/is not a valid time/),
      })
    }
    const leap = ok(impJson(impression({ event_time: '2024-02-29T00:00:00Z' })))
    expect((leap.events[0] as { event_time: number }).event_time).toBe(Date.UTC(2024, 1, 29))
  })

  it('epoch milliseconds, and a time before 1970', () => {
    expect((ok(impJson(impression({ event_time: 0 }))).events[0] as { event_time: number }).event_time).toBe(
      0,
    )
    expect(onlyReject(impJson(impression({ event_time: '1969-12-31T23:59:59Z' })))).toMatchObject({
      field: 'event_time',
      reason: 'must be ≥ 0, got -1000',
    })
  })

  it('nested paths name array indices and record fields', () => {
    const twoImps = (second: Record<string, unknown>) => bid({ imp: [{ id: '1' }, second] })
    expect(onlyReject(bidJson(bid({ imp: [{ id: '1', banner: { w: 300, h: -1 } }] })))).toMatchObject({
      field: 'imp[0].banner.h',
      reason: 'must be ≥ 0, got -1',
    })
    expect(onlyReject(bidJson(twoImps({ tagid: 't' })))).toEqual({
      index: 0,
      field: 'imp[1].id',
      reason: 'is required',
    })
    expect(onlyReject(bidJson(twoImps({ id: '2', video: { mimes: ['a', 7] } })))).toMatchObject({
      field: 'imp[1].video.mimes[1]',
    })
    expect(onlyReject(bidJson(bid({ device: { geo: { lat: 91 } } })))).toMatchObject({
      field: 'device.geo.lat',
      reason: 'must be ≤ 90, got 91',
    })
    expect(onlyReject(bidJson(bid({ imp: [] })))).toMatchObject({
      field: 'imp',
      reason: 'must have at least 1 item, got 0',
    })
    expect(onlyReject(bidJson(bid({ imp: {} })))).toMatchObject({ field: 'imp', reason: /must be an array/ })
  })

  it('keeps ext given as an object as its JSON text, and ext given as JSON text as is', () => {
    const asObject = ok(bidJson(bid({ ext: { a: [1, { b: null }] } })))
    expect((asObject.events[0] as BidEvent).request.ext).toBe('{"a":[1,{"b":null}]}')
    const text = '{ "a" : [1, {"b": null}] }'
    const asText = ok(bidJson(bid({ ext: text })))
    expect((asText.events[0] as BidEvent).request.ext).toBe(text)
    const nested = ok(bidJson(bid({ imp: [{ id: '1', ext: { gpid: '/x' } }] })))
    expect((nested.events[0] as BidEvent).request.imp[0]!.ext).toBe('{"gpid":"/x"}')
  })

  it('refuses ext that is not JSON text or an object', () => {
    expect(onlyReject(bidJson(bid({ ext: '{"a":' })))).toMatchObject({
      field: 'ext',
      reason: 'must be JSON text',
    })
    expect(onlyReject(bidJson(bid({ ext: 12 })))).toMatchObject({
      field: 'ext',
      reason: 'must be an object or JSON text, got number 12',
    })
    const long = { pad: 'x'.repeat(70_000) }
    expect(onlyReject(bidJson(bid({ ext: long })))).toMatchObject({ field: 'ext' })
  })

  it('refuses ext nested deeper than the limit', () => {
    const deep = (levels: number): unknown => {
      let v: unknown = { leaf: 1 }
      for (let i = 1; i < levels; i++) v = { a: v }
      return v
    }
    expect(ok(bidJson(bid({ ext: deep(10) }))).events).toHaveLength(1)
    const rej = onlyReject(bidJson(bid({ imp: [{ id: '1', ext: deep(MAX_JSON_FIELD_DEPTH + 5) }] })))
    expect(rej).toEqual({
      index: 0,
      field: 'imp[0].ext',
      reason: `is nested deeper than ${MAX_JSON_FIELD_DEPTH} levels`,
    })
    // Far deeper than the stack allows JSON.stringify to go: still a rejection, not a crash.
    expect(onlyReject(bidJson(bid({ ext: deep(100) }))).field).toBe('ext')
  })

  it('leaves absent OpenRTB fields absent (null), filling in nothing the sender did not send', () => {
    const r = ok(bidJson([bid(), bid({ cur: ['EUR'] })]))
    const [a, b] = r.events as { campaign_id: unknown; request: Record<string, unknown> }[]
    expect(a!.campaign_id).toBeNull()
    expect(a!.request).toMatchObject({ cur: null, test: null, site: null, tmax: null, _unknown: null })
    expect((a!.request.imp as unknown[])[0]).toMatchObject({
      id: '1',
      tagid: null,
      bidfloor: null,
      bidfloor_micros: null,
      bidfloorcur: null,
      banner: { w: 300, h: 250, format: null, ext: null, _unknown: null },
      video: null,
      ext: null,
    })
    expect(b!.request.cur).toEqual(['EUR'])
  })

  it('drops unknown fields and overwrites client-sent ingest_time and source', () => {
    const r = ok(impJson(impression({ foo: 1, __proto__x: 2, ingest_time: 5, source: 'spoofed' })))
    const e = r.events[0] as Record<string, unknown>
    const fields = (EVENT_SCHEMAS.impression.json as { fields: { name: string }[] }).fields.map((f) => f.name)
    expect(Object.keys(e)).toEqual(fields)
    expect(e.ingest_time).toBe(INGEST_TIME)
    expect(e.source).toBe(SOURCE)
  })

  it('every accepted event is valid for the Avro schema', () => {
    const r = ok(bidJson([bid(), bid({ ext: { x: 1 }, device: { devicetype: 4, geo: { lat: 1.5 } } })]))
    for (const e of r.events) expect(EVENT_SCHEMAS.bid.type.isValid(e)).toBe(true)
  })
})
