import { describe, expect, it } from 'vitest'
import { decodeBody } from '../../decoders/decode.js'
import type { Encoding } from '../../decoders/result.js'
import { EVENT_TYPES } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateFunnel } from '../../generator/funnel.js'
import { options, stamped } from '../support/events.js'
import { QUICK } from '../support/runs.js'
import { expectSamePaths } from '../support/transcode.js'

const ENCODINGS: Encoding[] = ['json', 'ndjson', 'csv', 'avro']
// Three funnels in `npm test`; the fast unit loop checks the first (see support/runs.ts).
const SEEDS = QUICK ? [1] : [1, 2, 3]

describe('every generated event round-trips exactly through every encoding', () => {
  for (const seed of SEEDS) {
    const funnel = generateFunnel({ seed, bids: 20_000 })
    for (const type of EVENT_TYPES) {
      for (const encoding of ENCODINGS) {
        it(`${type} as ${encoding} (seed ${seed})`, () => {
          // Bids are large and nested; a slice of them exercises every field as well.
          const events = type === 'bid' ? funnel.bid.slice(0, 1500) : funnel[type]
          expect(events.length).toBeGreaterThan(0)
          const body = encodeEvents(type, events, encoding)
          const result = decodeBody(body, {
            ...options(type),
            encoding,
            contentEncoding: 'identity',
            maxBytes: 1 << 30,
          })
          if (encoding === 'json' || encoding === 'ndjson')
            expectSamePaths(body, encoding === 'ndjson', options(type))
          if (!result.ok) throw new Error(`${result.error.code}: ${result.error.detail}`)
          expect(result.rejects).toEqual([])
          expect(result.events).toEqual(events.map(stamped))
          for (const e of result.events) expect(EVENT_SCHEMAS[type].type.isValid(e)).toBe(true)
        })
      }
    }
  }
})
