import { describe, expect, it } from 'vitest'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { csvCell } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { decode, expectError, ok } from '../support/decode.js'
import { INGEST_TIME, SOURCE } from '../support/events.js'

const T = Date.UTC(2026, 10, 1, 12, 30, 0)
const HEADER = 'event_id,event_time,click_id,impression_id,campaign_id,user_agent,ip,landing_url'
const ROW = `ev-1,${T},clk-1,imp-1,cmp-001,Mozilla/5.0,10.0.0.1,https://shop.example/`

function click(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_id: 'ev-1',
    event_time: T,
    ingest_time: INGEST_TIME,
    source: SOURCE,
    click_id: 'clk-1',
    impression_id: 'imp-1',
    campaign_id: 'cmp-001',
    user_agent: 'Mozilla/5.0',
    ip: '10.0.0.1',
    landing_url: 'https://shop.example/',
    _unknown: null,
    ...over,
  }
}

const clicks = (body: string | Buffer, maxEvents?: number) =>
  decode('click', 'csv', body, maxEvents === undefined ? {} : { maxEvents })

/**
 * The same table through the quote-free path and through the quoting path: a body with a quote
 * anywhere (here around the header's first name, which reads the same) is read by the quoting path.
 */
function bothPaths(lines: string[]): [string, string] {
  const plain = `${lines.join('\n')}\n`
  const [head, ...rows] = lines
  const comma = head!.indexOf(',')
  const quotedHead = comma < 0 ? `"${head}"` : `"${head!.slice(0, comma)}"${head!.slice(comma)}`
  const quoted = `${[quotedHead, ...rows].join('\n')}\n`
  return [plain, quoted]
}

describe('CSV bodies', () => {
  it('maps header names to fields', () => {
    for (const body of bothPaths([HEADER, ROW])) expect(ok(clicks(body)).events).toEqual([click()])
  })

  it('maps columns in any order, and keeps unknown columns in _unknown', () => {
    const header =
      'landing_url,extra,ip,campaign_id,event_time,user_agent,click_id,impression_id,event_id,more'
    const row = `https://shop.example/,x,10.0.0.1,cmp-001,${T},Mozilla/5.0,clk-1,imp-1,ev-1,y`
    for (const body of bothPaths([header, row])) {
      const r = ok(clicks(body))
      expect(r.events).toEqual([click({ _unknown: '{"extra":"x","more":"y"}' })])
      expect(r.events[0]).not.toHaveProperty('extra')
    }
  })

  it('leaves optional columns the header does not name at their defaults', () => {
    const r = ok(clicks('event_id,event_time,click_id,impression_id,campaign_id\nev-1,0,c,i,m\n'))
    expect(r.events).toEqual([
      click({
        event_time: 0,
        click_id: 'c',
        impression_id: 'i',
        campaign_id: 'm',
        user_agent: null,
        ip: null,
        landing_url: null,
      }),
    ])
  })

  it('refuses a header naming a column twice', () => {
    for (const body of bothPaths([`${HEADER},ip`, `${ROW},10.0.0.2`]))
      expectError(clicks(body), 'MISSING_HEADER_ROW')
  })

  it('refuses a header naming no schema field (a body without a header row)', () => {
    expectError(clicks(`${ROW}\n${ROW}\n`), 'MISSING_HEADER_ROW')
  })

  it('refuses an empty body and a header with no records', () => {
    expectError(clicks(''), 'MISSING_HEADER_ROW')
    expectError(clicks(`${HEADER}\n`), 'EMPTY_BODY')
    expectError(clicks(`${HEADER}\r\n\r\n\n`), 'EMPTY_BODY')
    expectError(clicks(`${HEADER},"q"\n`), 'EMPTY_BODY')
  })

  it('strips a UTF-8 byte order mark', () => {
    for (const body of bothPaths([HEADER, ROW])) expect(ok(clicks(`\ufeff${body}`)).events).toEqual([click()])
  })

  it('reads CRLF line ends, blank lines and a missing final newline', () => {
    for (const body of [
      `${HEADER}\r\n${ROW}\r\n\r\n${ROW}`,
      `${HEADER}\r\n"${'ev-1'}"${ROW.slice(4)}\r\n\r\n${ROW}`,
    ]) {
      const r = ok(clicks(body))
      expect(r.rejects).toEqual([])
      expect(r.events).toEqual([click(), click()])
    }
  })

  it('reads quoted cells holding commas, doubled quotes and line breaks', () => {
    const ua = 'Mozilla/5.0 (X11, "Linux")\r\nline two\nline three'
    const url = 'https://shop.example/?a=1,2'
    const body = `${HEADER}\r\nev-1,${T},clk-1,imp-1,cmp-001,${csvCell(ua)},10.0.0.1,${csvCell(url)}\r\n`
    const r = ok(clicks(body))
    expect(r.events).toEqual([click({ user_agent: ua, landing_url: url })])
  })

  it('reads an empty unquoted cell as absent and a quoted "" as the empty string', () => {
    const row = (ua: string, campaign: string) =>
      `ev-1,${T},clk-1,imp-1,${campaign},${ua},10.0.0.1,https://shop.example/`
    const r = ok(
      clicks([HEADER, row('', 'cmp-001'), row('""', 'cmp-001'), row('x', ''), row('x', '""')].join('\n')),
    )
    expect(r.events).toEqual([click({ user_agent: null }), click({ user_agent: '' })])
    expect(r.rejects.map((x) => [x.index, x.field, x.reason])).toEqual([
      [2, 'campaign_id', 'is required'],
      [3, 'campaign_id', 'must not be empty'],
    ])
  })

  it('fills a default for an empty cell and refuses a quoted empty one where the default is not empty', () => {
    const header = 'event_id,event_time,impression_id,auction_id,campaign_id,cost_micros,currency,device_type'
    const r = ok(
      decode('impression', 'csv', `${header}\ne,0,i,a,c,5,,\ne,0,i,a,c,5,"",\ne,0,i,a,c,5,EUR,""\n`),
    )
    expect(r.events).toHaveLength(1)
    expect(r.events[0]).toMatchObject({ currency: 'USD', device_type: 'UNKNOWN' })
    expect(r.rejects.map((x) => [x.index, x.field])).toEqual([
      [1, 'currency'],
      [2, 'device_type'],
    ])
  })

  it('rejects a row whose column count differs from the header, on its own, with its raw text', () => {
    for (const body of bothPaths([HEADER, ROW, 'ev-2,1,c,i', ROW, `${ROW},extra`])) {
      const r = ok(clicks(body))
      expect(r.events).toHaveLength(2)
      expect(r.rejects.map((x) => [x.index, x.field])).toEqual([
        [1, null],
        [3, null],
      ])
      expect(r.rejects[0]!.reason).toMatch(/^has \d+ fields, the header has \d+$/)
      expect(r.rejects[0]!.raw.toString()).toBe('ev-2,1,c,i')
    }
  })

  it('reads text cells as numbers, epoch-ms or ISO times, and names the bad field', () => {
    const header =
      'event_id,event_time,conversion_id,click_id,campaign_id,conversion_type,value_micros,currency'
    const body = [
      header,
      `a,${T},cv,ck,m,PURCHASE,2500000,USD`,
      'b,2026-11-01T12:30:00Z,cv,ck,m,LEAD,0,',
      'c,2026-11-01T12:30:00,cv,ck,m,LEAD,0,',
      'd,0,cv,ck,m,REFUND,0,',
      'e,0,cv,ck,m,OTHER,12.5,',
      'f,0,cv,ck,m,OTHER,1e3,',
      'g,0,cv,ck,m,OTHER,-3,',
      'h,0,cv,ck,m,,,',
    ].join('\n')
    const r = ok(decode('conversion', 'csv', body))
    expect(r.events.map((e) => (e as { event_id: string }).event_id)).toEqual(['a', 'b', 'f', 'h'])
    expect(r.events[0]).toMatchObject({ event_time: T, value_micros: 2_500_000, conversion_type: 'PURCHASE' })
    expect(r.events[1]).toMatchObject({ event_time: T, currency: null })
    expect(r.events[2]).toMatchObject({ value_micros: 1000 })
    expect(r.events[3]).toMatchObject({ conversion_type: 'OTHER', value_micros: 0 })
    expect(r.rejects.map((x) => [x.index, x.field])).toEqual([
      [2, 'event_time'],
      [3, 'conversion_type'],
      [4, 'value_micros'],
      [6, 'value_micros'],
    ])
    expect(r.rejects[3]!.reason).toBe('must be ≥ 0, got -3')
  })

  it('reads nested values (a bid request imp[]) from JSON text in one cell', () => {
    const [bid] = generateEvents('bid', 1, 7)
    // An OpenRTB request as its sender has it: one column per top-level field.
    const header = 'id,imp,site,cur,ext'
    const line = (imp: string, site = '') =>
      [
        (bid!.request as { id: string }).id,
        csvCell(imp),
        site,
        csvCell('["USD","EUR"]'),
        csvCell('{"k":1}'),
      ].join(',')
    const imp = '[{"id":"1","banner":{"w":300,"h":250},"ext":{"gpid":"/a"}}]'
    const body = [
      header,
      line(imp, csvCell('{"domain":"news.example","cat":["IAB1"]}')),
      line('[{"id":"1","banner":{"w":300,"h":-1}}]'),
      line('[{"id":"1"'),
      line('{"id":"1"}'),
      line(imp, csvCell('not json')),
    ].join('\n')
    const r = ok(decode('bid', 'csv', body))
    expect(r.events).toHaveLength(1)
    const event = r.events[0] as Record<string, unknown>
    const e = event.request as Record<string, unknown>
    expect(e.imp).toMatchObject([
      {
        id: '1',
        tagid: null,
        bidfloor_micros: null,
        bidfloorcur: null,
        banner: { w: 300, h: 250 },
        video: null,
        ext: '{"gpid":"/a"}',
      },
    ])
    expect(e.site).toMatchObject({ domain: 'news.example', cat: ['IAB1'], publisher: null })
    expect(e.cur).toEqual(['USD', 'EUR'])
    expect(e.ext).toBe('{"k":1}')
    expect(EVENT_SCHEMAS.bid.type.isValid(event)).toBe(true)
    expect(r.rejects.map((x) => [x.index, x.field, x.reason])).toEqual([
      [1, 'imp[0].banner.h', 'must be ≥ 0, got -1'],
      [2, 'imp', 'must be a JSON array'],
      [3, 'imp', 'must be an array, got an object'],
      [4, 'site', 'must be a JSON object'],
    ])
  })

  it('refuses an unterminated quote as a malformed body', () => {
    expectError(clicks(`${HEADER}\n${ROW.replace('Mozilla', '"Mozilla')}\n`), 'MALFORMED_BODY')
    expectError(clicks(`${HEADER}\n"ev-1,${T}\n`), 'MALFORMED_BODY')
  })

  it('refuses a quote inside an unquoted cell as a malformed body', () => {
    expectError(clicks(`${HEADER}\n${ROW.replace('Mozilla/5.0', 'Moz"illa')}\n`), 'MALFORMED_BODY')
  })

  it('refuses more records than maxEvents on both paths, and accepts exactly maxEvents', () => {
    for (const body of bothPaths([HEADER, ROW, ROW, ROW])) {
      expectError(clicks(body, 2), 'TOO_MANY_EVENTS')
      expect(ok(clicks(body, 3)).events).toHaveLength(3)
    }
  })

  it('refuses invalid UTF-8', () => {
    expectError(
      clicks(Buffer.concat([Buffer.from(`${HEADER}\n`), Buffer.from([0xff, 0xfe, 0x2c])])),
      'INVALID_UTF8',
    )
  })
})
