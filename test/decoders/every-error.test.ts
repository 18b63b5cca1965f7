// Every problem of an invalid event, not only the first: each with its JSON path, in schema order,
// bounded (20, then one "…N more" marker), the same on every encoding and on both JSON paths.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { writeContainer } from '../../decoders/avro-container.js'
import type { Encoding } from '../../decoders/result.js'
import { MAX_ERRORS_PER_EVENT, type Rejection } from '../../decoders/result.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { decode, ok } from '../support/decode.js'

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/openrtb/${name}`, import.meta.url), 'utf8')) as Record<
    string,
    unknown
  > & { imp: Record<string, unknown>[] }

const problems = (r: Rejection) => r.errors.map((e) => [e.field, e.reason])

describe('every error of an event', () => {
  it('lists each problem of a bid request with its path, at every depth', () => {
    const good = fixture('ex1-simple-banner.json')
    const bad = structuredClone(good)
    bad.imp[0]!.banner = {
      format: [
        { w: 300, h: 250 },
        { w: 'wide', h: -1 },
      ],
    }
    bad.imp[0]!.bidfloor = 'cheap'
    bad.imp.push({ id: 7 })
    bad.tmax = 'soon'
    for (const encoding of ['json', 'ndjson'] as const) {
      const body =
        encoding === 'json'
          ? JSON.stringify([good, bad])
          : `${JSON.stringify(good)}\n${JSON.stringify(bad)}\n`
      const r = ok(decode('bid', encoding, body))
      expect(r.events).toHaveLength(1)
      expect(r.rejects).toHaveLength(1)
      const rej = r.rejects[0]!
      expect(problems(rej)).toEqual([
        ['imp[0].banner.format[1].w', 'must be a 32-bit integer, got string "wide"'],
        ['imp[0].banner.format[1].h', 'must be ≥ 0, got -1'],
        ['imp[0].bidfloor', 'must be a finite number, got string "cheap"'],
        ['imp[1].id', 'must be a string, got number 7'],
        ['tmax', 'must be a 32-bit integer, got string "soon"'],
      ])
      // The answer's shape before: the first problem as field and reason.
      expect([rej.index, rej.field, rej.reason]).toEqual([1, rej.errors[0]!.field, rej.errors[0]!.reason])
    }
  })

  it('keeps 20 problems, then one marker counting the rest', () => {
    const bad = fixture('ex1-simple-banner.json')
    bad.imp = Array.from({ length: 33 }, (_, i) => ({ id: i }))
    const rej = ok(decode('bid', 'json', JSON.stringify(bad))).rejects[0]!
    expect(rej.errors).toHaveLength(MAX_ERRORS_PER_EVENT + 1)
    expect(rej.errors[19]).toEqual({ field: 'imp[19].id', reason: 'must be a string, got number 19' })
    expect(rej.errors[20]).toEqual({ field: null, reason: '…13 more (the first 20 are listed)' })
  })

  it('reports the same problems of an impression over JSON, NDJSON, CSV and Avro', () => {
    const [good, bad] = generateEvents('impression', 2, 3)
    bad!.cost_micros = -5
    bad!.country = 'Germany'
    bad!.event_id = ''
    const expected = [
      ['event_id', 'must not be empty'],
      ['country', 'must be at most 2 characters, got 7'],
      ['cost_micros', 'must be ≥ 0, got -5'],
    ].sort((a, b) => fieldOrder(a[0]!) - fieldOrder(b[0]!))
    for (const encoding of ['json', 'ndjson', 'csv', 'avro'] as Encoding[]) {
      const body =
        encoding === 'avro'
          ? writeContainer(EVENT_SCHEMAS.impression.type, [good!, bad!])
          : encodeEvents('impression', [good!, bad!], encoding)
      const r = ok(decode('impression', encoding, body))
      expect(r.events, encoding).toHaveLength(1)
      expect(r.rejects.map(problems), encoding).toEqual([expected])
      expect(r.rejects[0]!.index, encoding).toBe(1)
    }
  })

  it('names a missing field and a bad one of the same event', () => {
    const r = ok(decode('click', 'csv', 'click_id,event_time,campaign_id\nk1,yesterday,c1\n'))
    expect(r.rejects.map(problems)).toEqual([
      [
        ['event_id', 'is required'],
        ['event_time', 'must be epoch milliseconds or an ISO-8601 time with zone, got string "yesterday"'],
        ['impression_id', 'is required'],
      ],
    ])
  })

  it('gives a problem of the event as a whole one entry with a null path', () => {
    const r = ok(decode('impression', 'ndjson', '5\n{"broken\n'))
    expect(r.rejects.map(problems)).toEqual([
      [[null, 'must be an object, got number 5']],
      [[null, expect.stringMatching(/^invalid JSON: /)]],
    ])
  })
})

function fieldOrder(name: string): number {
  return EVENT_SCHEMAS.impression.model.fields.findIndex((f) => f.name === name)
}
