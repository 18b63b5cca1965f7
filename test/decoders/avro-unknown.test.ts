// Avro writer schemas naming fields adgate's does not: the fields are kept in _unknown, exactly as
// the same events posted as JSON keep them (decoders/avro-unknown.ts).
import avro from 'avsc'
import { describe, expect, it } from 'vitest'
import { writeContainer } from '../../decoders/avro-container.js'
import { namesUnknownFields } from '../../decoders/avro-unknown.js'
import { BID_V1 } from '../../decoders/bid-upcast.js'
import { eventToJson } from '../../events/event-json.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { generateEvents } from '../../generator/funnel.js'
import { decode, ok } from '../support/decode.js'

type Row = Record<string, unknown>

/** A copy of `schema` with `extra[name]` added in the middle of each record called `name`. */
function widened(schema: unknown, extra: Record<string, unknown[]>): avro.Type {
  const copy = structuredClone(schema)
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return
    const n = node as Row
    if (n.type === 'record' && typeof n.name === 'string' && extra[n.name] && Array.isArray(n.fields)) {
      const fields = n.fields as unknown[]
      fields.splice(1, 0, ...extra[n.name]!)
    }
    for (const v of Object.values(n)) visit(v)
  }
  visit(copy)
  return avro.Type.forSchema(copy as avro.Schema)
}

const BID_EXTRA = {
  BidEvent: [{ name: 'x_env', type: { type: 'array', items: 'string' }, default: [] }],
  BidRequest: [{ name: 'x_req', type: { type: 'map', values: 'int' }, default: {} }],
  Imp: [
    {
      name: 'x_imp',
      type: {
        type: 'record',
        name: 'XImp',
        fields: [
          { name: 'raw', type: 'bytes' },
          { name: 'n', type: 'long' },
          { name: 'kind', type: { type: 'enum', name: 'XKind', symbols: ['A', 'B'] } },
        ],
      },
    },
  ],
  Format: [{ name: 'x_fmt', type: { type: 'array', items: 'int' } }],
  Publisher: [{ name: 'x_pub', type: ['null', 'string'], default: null }],
}

/** Adds the extra fields to a bid request, as Avro values (`json` false) or as JSON posts them. */
function addExtras(request: Row, json: boolean): void {
  request.x_req = { a: 1, b: 2 }
  for (const imp of request.imp as Row[]) {
    const raw = Buffer.from([0, 255, 65])
    imp.x_imp = { raw: json ? raw.toString('latin1') : raw, n: 2 ** 40, kind: 'B' }
    for (const f of ((imp.banner as Row | null)?.format as Row[] | null) ?? []) f.x_fmt = [1, 2]
  }
  const publisher = (request.site as Row | null)?.publisher as Row | null | undefined
  if (publisher) publisher.x_pub = null
}

describe('Avro writer schemas with fields adgate does not name', () => {
  it('bid: fields beside the request, at the top of the request, inside imp[] and banner.format[], and in a nested record are kept as JSON input keeps them', () => {
    const writer = widened(EVENT_SCHEMAS.bid.json, BID_EXTRA)
    const events = generateEvents('bid', 12, 7) as Row[]
    // A writer on adgate's own schema may carry fields kept before: they stay, first.
    ;((events[0]!.request as Row).imp as Row[])[0]!._unknown = JSON.stringify({ before: true })

    const values = events.map((e) => {
      const v = structuredClone(e)
      addExtras(v.request as Row, false)
      v.x_env = ['beside request']
      return v
    })
    const posted = events.map((e) => {
      const j = eventToJson(EVENT_SCHEMAS.bid.model, e)
      addExtras(j.request as Row, true)
      j.x_env = ['beside request']
      return j
    })
    const fromAvro = ok(decode('bid', 'avro', writeContainer(writer, values, { blockSize: 5 })))
    const fromJson = ok(decode('bid', 'json', JSON.stringify(posted)))
    expect(fromAvro.rejects).toEqual([])
    expect(fromJson.rejects).toEqual([])
    expect(fromAvro.records).toBeUndefined() // re-encoded with _unknown, not spliced
    expect(fromAvro.events).toEqual(fromJson.events)

    expect((fromAvro.events[0] as Row)._unknown).toBe(JSON.stringify({ x_env: ['beside request'] }))
    const request = (fromAvro.events[0] as Row).request as Row
    expect(request._unknown).toBe(JSON.stringify({ x_req: { a: 1, b: 2 } }))
    const imp = (request.imp as Row[])[0]!
    expect(imp._unknown).toBe(
      JSON.stringify({ before: true, x_imp: { raw: '\u0000\u00ffA', n: 2 ** 40, kind: 'B' } }),
    )
    const format = ((imp.banner as Row).format as Row[])[0]!
    expect(format._unknown).toBe(JSON.stringify({ x_fmt: [1, 2] }))
  })

  it('bid v1 writer with fields v1 does not name: they reach the request as JSON input would put them', () => {
    const writer = widened(BID_V1.json, {
      BidRequest: [
        { name: 'regs', type: { type: 'record', name: 'R', fields: [{ name: 'coppa', type: 'int' }] } },
      ],
      Imp: [{ name: 'x_imp', type: 'string', default: '' }],
    })
    const value = writer.clone(
      {
        event_id: 'ev-old',
        event_time: 1_700_000_000_000,
        id: 'auc-old',
        campaign_id: 'cmp-001',
        bid_price_micros: 900_000,
        imp: [{ id: '1', bidfloor_micros: 30_000, banner: { w: 300, h: 250 }, x_imp: 'kept' }],
        regs: { coppa: 1 },
      },
      { wrapUnions: false },
    )
    const r = ok(decode('bid', 'avro', writeContainer(writer, [value])))
    expect(r.rejects).toEqual([])
    const request = (r.events[0] as Row).request as Row
    expect(request.regs).toMatchObject({ coppa: 1 }) // a field v2 models
    for (const imp of request.imp as Row[])
      expect(JSON.parse(imp._unknown as string)).toEqual({ x_imp: 'kept' })
  })

  it('refuses an event whose kept fields break _unknown’s bounds, as JSON input would', () => {
    const schema = EVENT_SCHEMAS.click.json as Row
    const writer = avro.Type.forSchema({
      ...schema,
      fields: [...(schema.fields as unknown[]), { name: 'blob', type: 'string' }],
    } as avro.Schema)
    const [a, b] = generateEvents('click', 2, 3) as Row[]
    const r = ok(
      decode(
        'click',
        'avro',
        writeContainer(writer, [
          { ...a, blob: 'x'.repeat(300_000) },
          { ...b, blob: 'ok' },
        ]),
      ),
    )
    expect(r.rejects.map((x) => [x.index, x.field])).toEqual([[0, '_unknown']])
    expect(r.events).toHaveLength(1)
    expect((r.events[0] as Row)._unknown).toBe('{"blob":"ok"}')
  })

  it('a wrapped union: kept as Avro JSON under a new field; nothing kept when it is in a field adgate has', () => {
    const schema = EVENT_SCHEMAS.click.json as Row & { fields: Row[] }
    const either = ['int', 'long']
    const extraField = { name: 'either', type: either }
    const newField = avro.Type.forSchema({ ...schema, fields: [...schema.fields, extraField] } as avro.Schema)
    const [a] = generateEvents('click', 1, 3) as Row[]
    const kept = ok(decode('click', 'avro', writeContainer(newField, [{ ...a, either: { long: 5 } }])))
    expect((kept.events[0] as Row)._unknown).toBe('{"either":{"long":5}}')

    // A wrapped union where adgate has a field (ip): its values would not line up; not kept.
    const fields = schema.fields.map((f) =>
      f.name === 'ip' ? { ...f, type: ['null', 'string', ...either] } : f,
    )
    const known = avro.Type.forSchema({ ...schema, fields: [...fields, extraField] } as avro.Schema)
    expect(namesUnknownFields(newField, EVENT_SCHEMAS.click.model)).toBe(true)
    expect(namesUnknownFields(known, EVENT_SCHEMAS.click.model)).toBe(false)
  })

  it('keeps the direct path for a writer naming nothing new', () => {
    const events = generateEvents('click', 3, 3)
    const r = ok(decode('click', 'avro', writeContainer(EVENT_SCHEMAS.click.type, events)))
    expect(r.records).toHaveLength(3)
  })
})
