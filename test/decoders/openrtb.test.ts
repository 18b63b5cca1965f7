// OpenRTB 2.6 bid requests exactly as senders have them (issue 14): the IAB examples, unknown
// fields at every depth, exact floors, derived envelope, and a lossless round trip (property).
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { writeContainer } from '../../decoders/avro-container.js'
import { BID_V1 } from '../../decoders/bid-upcast.js'
import { derivedEventId } from '../../events/event-id.js'
import { eventToJson } from '../../events/event-json.js'
import { bodyField, type RecordNode, recordOf } from '../../events/schema-model.js'
import { EVENT_SCHEMAS, SUBJECTS } from '../../events/schemas.js'
import { decodeWire, encodeWire } from '../../events/wire.js'
import { csvCell } from '../../generator/encode.js'
import { decode, ok, onlyReject } from '../support/decode.js'
import { INGEST_TIME, options, SOURCE } from '../support/events.js'
import { runs } from '../support/runs.js'
import { expectSamePaths } from '../support/transcode.js'

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'openrtb')
const EXAMPLES = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, readFileSync(join(FIXTURES, f), 'utf8')] as const)

const BID = EVENT_SCHEMAS.bid
const REQUEST_MODEL = recordOf(bodyField(BID.model)!.node) as RecordNode

/** The request part of a canonical bid event, as its sender posted it. */
function requestOf(event: object): Record<string, unknown> {
  return eventToJson(REQUEST_MODEL, (event as { request: object }).request)
}

function only(
  text: string | Buffer,
  encoding: 'json' | 'ndjson' | 'csv' | 'avro' = 'json',
): Record<string, unknown> {
  const r = ok(decode('bid', encoding, text))
  expect(r.rejects).toEqual([])
  expect(r.events).toHaveLength(1)
  return r.events[0] as Record<string, unknown>
}

/** A CSV body of one request: a column per top-level key, nested values as JSON text. */
function csvOf(request: Record<string, unknown>): string {
  const keys = Object.keys(request)
  return `${keys.join(',')}\n${keys.map((k) => csvCell(request[k])).join(',')}\n`
}

describe('OpenRTB 2.6 bid requests as senders have them', () => {
  it('has the IAB examples as fixtures', () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(9)
  })

  it.each(EXAMPLES)(
    '%s is accepted unchanged, with a derived envelope, and read back with every field',
    (_, text) => {
      const posted = JSON.parse(text) as { id: string }
      const event = only(text)
      expect(requestOf(event)).toEqual(posted)
      expect(event).toMatchObject({
        event_id: derivedEventId(SOURCE, posted.id),
        event_time: INGEST_TIME,
        ingest_time: INGEST_TIME,
        source: SOURCE,
        campaign_id: null,
        bid_price_micros: 0,
      })
      // What a Kafka consumer reads: the wire-format value, decoded.
      const read = decodeWire(encodeWire(BID, event))
      expect(read.schema.id).toBe(BID.id)
      expect(requestOf(read.value as object)).toEqual(posted)
    },
  )

  it.each(EXAMPLES)('%s as NDJSON, CSV and Avro OCF gives the same event as JSON', (_, text) => {
    const event = only(text)
    const posted = JSON.parse(text) as Record<string, unknown>
    expect(only(`${JSON.stringify(posted)}\n`, 'ndjson')).toEqual(event)
    expect(only(csvOf(posted), 'csv')).toEqual(event)
    expect(only(writeContainer(BID.type, [event]), 'avro')).toEqual(event)
  })

  it('keeps floors exactly as sent and in integer micros', () => {
    const ex1 = only(readFileSync(join(FIXTURES, 'ex1-simple-banner.json'), 'utf8')) as {
      request: { imp: { bidfloor: number; bidfloor_micros: number }[] }
    }
    expect(ex1.request.imp[0]).toMatchObject({ bidfloor: 0.03, bidfloor_micros: 30_000 })
    const ex5 = only(readFileSync(join(FIXTURES, 'ex5-pmp-deal.json'), 'utf8')) as {
      request: { imp: { pmp: { deals: { bidfloor: number; bidfloor_micros: number }[] } }[] }
    }
    expect(ex5.request.imp[0]!.pmp.deals.map((d) => [d.bidfloor, d.bidfloor_micros])).toEqual([
      [2.5, 2_500_000],
      [2, 2_000_000],
    ])
  })

  it('derives one event id for a retried request, another for another auction or source', () => {
    const a = { id: 'auc-1', imp: [{ id: '1' }] }
    const first = only(JSON.stringify(a))
    expect(only(JSON.stringify(a)).event_id).toBe(first.event_id)
    expect(only(JSON.stringify({ ...a, id: 'auc-2' })).event_id).not.toBe(first.event_id)
    expect(derivedEventId('other-key', 'auc-1')).not.toBe(first.event_id)
  })

  it("takes adgate's envelope beside the request: the given event id, time, campaign and price", () => {
    const event = only(
      JSON.stringify({
        event_id: 'ev-9',
        event_time: '2026-11-01T12:00:00Z',
        campaign_id: 'cmp-001',
        bid_price_micros: 1_250_000,
        request: { id: 'auc-9', imp: [{ id: '1', bidfloor: 1.1 }] },
      }),
    )
    expect(event).toMatchObject({
      event_id: 'ev-9',
      event_time: Date.UTC(2026, 10, 1, 12),
      campaign_id: 'cmp-001',
      bid_price_micros: 1_250_000,
    })
    expect(requestOf(event)).toEqual({ id: 'auc-9', imp: [{ id: '1', bidfloor: 1.1 }] })
  })

  it('keeps fields the schema does not model, at every depth, and explicit nulls, losslessly', () => {
    const posted = {
      id: 'auc-u',
      'x-top': { a: [1, { b: null }], c: 'é' },
      imp: [
        {
          id: '1',
          'x-imp': true,
          banner: { w: 300, h: 250, 'x-banner': [3, 4], format: [{ w: 1, h: 2, 'x-format': 'f' }] },
          pmp: { deals: [{ id: 'd', 'x-deal': 1.5 }] },
          ext: { gpid: '/a', deep: { deeper: [null] } },
        },
      ],
      site: { publisher: { id: 'p', 'x-pub': { k: 'v' } }, content: { 'x-content': 0 } },
      user: { gender: null, eids: [{ source: 's', uids: [{ id: 'u', 'x-uid': 'q' }] }] },
      // adgate's own derived fields, posted by a sender, are theirs: kept as unknown.
      bidfloor_micros: 5,
      _unknown: 'mine',
    }
    const text = JSON.stringify(posted)
    const event = only(text) as { request: { _unknown: string; imp: { _unknown: string }[] } }
    expect(requestOf(event)).toEqual(posted)
    expect(event.request._unknown).toBe(
      JSON.stringify({ 'x-top': posted['x-top'], bidfloor_micros: 5, _unknown: 'mine' }),
    )
    expect(event.request.imp[0]!._unknown).toBe('{"x-imp":true}')
    const read = decodeWire(encodeWire(BID, event))
    expect(requestOf(read.value as object)).toEqual(posted)
  })

  it("keeps fields posted beside request in the envelope's _unknown (v3), the same in every encoding", () => {
    // Known fields in schema order, then the others: the JSON view rebuilds exactly this text.
    const posted = {
      event_id: 'ev-env',
      event_time: 1_760_000_000_000,
      request: { id: 'auc-env', imp: [{ id: '1', bidfloor: 0.5 }] },
      zzz: 1,
      campaign_id: null, // an explicit null of an envelope field: kept, as in any record
      'x-trace': { hops: ['ssp', null, { deep: [[]] }], ü: '"q" \\ \n' },
    }
    const text = JSON.stringify(posted)
    const event = only(text) as Record<string, unknown>
    expect(event._unknown).toBe(JSON.stringify({ zzz: 1, campaign_id: null, 'x-trace': posted['x-trace'] }))
    expect((event.request as Record<string, unknown>)._unknown).toBeNull()
    // The JSON view of what a Kafka consumer reads is the posted text, byte for byte.
    const read = decodeWire(encodeWire(BID, event))
    const back = eventToJson(BID.model, read.value as object)
    for (const f of ['ingest_time', 'source', 'bid_price_micros']) delete back[f]
    expect(JSON.stringify(back)).toBe(text)
    expect(only(`${text}\n`, 'ndjson')).toEqual(event)
    // CSV with the envelope's columns: a column the envelope does not model is kept as its text cell.
    const csv = only(csvOf(posted), 'csv')
    expect(csv._unknown).toBe(JSON.stringify({ zzz: '1', 'x-trace': JSON.stringify(posted['x-trace']) }))
    expect(csv.request).toEqual(event.request)
  })

  it('reads Avro bodies written with the v2 bid schema: the envelope keeps nothing more (_unknown null)', () => {
    const v2 = SUBJECTS.get('adgate.bids-value')!.find((v) => v.version === 2)!
    const event = only(
      JSON.stringify({ event_id: 'ev-v2', event_time: 1, request: { id: 'a', imp: [{ id: '1' }] } }),
    )
    const { _unknown, ...asV2 } = event
    expect(_unknown).toBeNull()
    expect(only(writeContainer(v2.type, [asV2]), 'avro')).toEqual(event)
  })

  it('reads Avro bodies written with the v1 bid schema: upcast to the envelope and request', () => {
    const v1 = BID_V1.type.clone(
      {
        event_id: 'ev-old',
        event_time: 1_700_000_000_000,
        id: 'auc-old',
        campaign_id: 'cmp-001',
        bid_price_micros: 900_000,
        imp: [{ id: '1', bidfloor_micros: 30_000, banner: { w: 300, h: 250 }, ext: '{"gpid":"/a"}' }],
        site: { domain: 'news.example', cat: ['IAB1'] },
      },
      { wrapUnions: false },
    )
    const event = only(writeContainer(BID_V1.type, [v1]), 'avro')
    expect(event).toMatchObject({ event_id: 'ev-old', event_time: 1_700_000_000_000, campaign_id: 'cmp-001' })
    expect(requestOf(event)).toEqual({
      id: 'auc-old',
      imp: [{ id: '1', bidfloor: 0.03, bidfloorcur: 'USD', banner: { w: 300, h: 250 }, ext: { gpid: '/a' } }],
      site: { domain: 'news.example', cat: ['IAB1'] },
      cur: ['USD'],
      test: 0,
    })
  })

  it('refuses a request that breaks OpenRTB types, naming the path in the request as posted', () => {
    expect(onlyReject(decode('bid', 'json', '{"id":"a","imp":[{"id":"1","banner":{"w":"300"}}]}'))).toEqual({
      index: 0,
      field: 'imp[0].banner.w',
      reason: 'must be a 32-bit integer, got string "300"',
    })
    expect(onlyReject(decode('bid', 'json', '{"id":"a","imp":[]}'))).toMatchObject({
      field: 'imp',
      reason: 'must have at least 1 item, got 0',
    })
    expect(onlyReject(decode('bid', 'json', '{"imp":[{"id":"1"}]}'))).toMatchObject({
      field: 'id',
      reason: 'is required',
    })
  })
})

// Random OpenRTB requests: random optional objects, ext and unknown fields at several depths.
const text = fc.string({ maxLength: 12 })
const unknownFields = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }).map((k) => `x-${k}`),
  fc.jsonValue({ maxDepth: 3 }),
  { maxKeys: 3 },
)
const ext = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 3 })
const int = fc.integer({ min: 0, max: 100_000 })
const floor = fc
  .double({ min: 0, max: 1000, noNaN: true, noDefaultInfinity: true })
  .map((d) => (d === 0 ? 0 : d))
const withUnknown = <T extends object>(arb: fc.Arbitrary<T>) =>
  fc.tuple(arb, unknownFields).map(([o, u]) => ({ ...u, ...o }))
const format = withUnknown(fc.record({ w: int, h: int }, { requiredKeys: [] }))
const banner = withUnknown(
  fc.record(
    { format: fc.array(format, { maxLength: 3 }), w: int, h: int, battr: fc.array(int), ext },
    { requiredKeys: [] },
  ),
)
const video = withUnknown(
  fc.record(
    { mimes: fc.array(text), protocols: fc.array(int), minduration: int, plcmt: int },
    { requiredKeys: [] },
  ),
)
const deal = withUnknown(
  fc.record(
    { id: fc.string({ minLength: 1, maxLength: 8 }), bidfloor: floor, wseat: fc.array(text), ext },
    {
      requiredKeys: ['id'],
    },
  ),
)
const imp = withUnknown(
  fc.record(
    {
      id: fc.string({ minLength: 1, maxLength: 8 }),
      banner,
      video,
      native: fc.record({ request: text, ver: text }, { requiredKeys: ['request'] }),
      pmp: fc.record({ private_auction: int, deals: fc.array(deal, { maxLength: 3 }) }, { requiredKeys: [] }),
      bidfloor: floor,
      bidfloorcur: fc.constantFrom('USD', 'EUR'),
      tagid: text,
      ext,
    },
    { requiredKeys: ['id'] },
  ),
)
const request = withUnknown(
  fc.record(
    {
      id: fc.string({ minLength: 1, maxLength: 16 }),
      imp: fc.array(imp, { minLength: 1, maxLength: 3 }),
      site: withUnknown(
        fc.record(
          { id: text, domain: text, publisher: withUnknown(fc.record({ id: text }, { requiredKeys: [] })) },
          {
            requiredKeys: [],
          },
        ),
      ),
      device: withUnknown(
        fc.record(
          {
            ua: text,
            ifa: text,
            dnt: int,
            geo: fc.record(
              { lat: fc.double({ min: -90, max: 90, noNaN: true }), country: text },
              { requiredKeys: [] },
            ),
          },
          {
            requiredKeys: [],
          },
        ),
      ),
      user: fc.record(
        {
          id: text,
          eids: fc.array(fc.record({ source: text, uids: fc.array(fc.record({ id: text, atype: int })) }), {
            maxLength: 2,
          }),
        },
        { requiredKeys: [] },
      ),
      source: fc.record(
        {
          tid: text,
          schain: fc.record({
            complete: int,
            ver: text,
            nodes: fc.array(fc.record({ asi: text, sid: text, hp: int })),
          }),
        },
        { requiredKeys: [] },
      ),
      regs: fc.record(
        { gdpr: int, coppa: int, us_privacy: text, gpp: text, gpp_sid: fc.array(int) },
        { requiredKeys: [] },
      ),
      bcat: fc.array(text),
      badv: fc.array(text),
      at: int,
      tmax: int,
      cur: fc.array(text),
      test: fc.constantFrom(0, 1),
      ext,
    },
    { requiredKeys: ['id', 'imp'] },
  ),
)

describe('OpenRTB round trip (property)', () => {
  it('JSON → Kafka wire value → JSON is lossless for random requests with unknown fields', () => {
    fc.assert(
      fc.property(request, (req) => {
        const posted = JSON.parse(JSON.stringify(req)) as Record<string, unknown>
        const r = decode('bid', 'json', JSON.stringify(posted))
        if (!r.ok) throw new Error(r.error.detail)
        expect(r.rejects).toEqual([])
        const read = decodeWire(encodeWire(BID, r.events[0]!))
        expect(requestOf(read.value as object)).toEqual(posted)
      }),
      { numRuns: runs(200) },
    )
  })

  it('and for envelopes with random fields beside the request (bid v3), on the native path too', () => {
    const envelope = withUnknown(
      fc.record({ event_id: fc.string({ minLength: 1, maxLength: 20 }), event_time: int, request }),
    )
    fc.assert(
      fc.property(envelope, (env) => {
        const posted = JSON.parse(JSON.stringify(env)) as Record<string, unknown>
        const text = JSON.stringify(posted)
        const r = decode('bid', 'json', text)
        if (!r.ok) throw new Error(r.error.detail)
        expect(r.rejects).toEqual([])
        const back = eventToJson(BID.model, decodeWire(encodeWire(BID, r.events[0]!)).value as object)
        for (const f of ['ingest_time', 'source', 'bid_price_micros']) delete back[f]
        expect(back).toEqual(posted)
        expectSamePaths(Buffer.from(text), true, options('bid'))
      }),
      { numRuns: runs(200) },
    )
  })
})
