import type { Encoding } from '../decoders/result.js'
import { EVENT_TYPES } from '../events/catalog.js'
import type { WarmUpBody } from '../workers/pool.js'
import { encodeEvents } from './encode.js'
import { generateEvents } from './funnel.js'

const ENCODINGS: readonly Encoding[] = ['json', 'ndjson', 'csv', 'avro']
/** Bodies per type and encoding, each of EVENTS_PER_BODY distinct generated events. */
const BODIES_PER_KIND = 2
const EVENTS_PER_BODY = 100

/**
 * The bodies a starting gateway decodes on every decode thread before it says ready (workers/pool.ts
 * warmUp): each event type in each encoding, plus a malformed one of each, so the first real
 * requests of any route, encoding or error path do not pay for the JIT. Generated, never posted:
 * what the warm-up decodes is thrown away.
 */
export function warmUpBodies(): WarmUpBody[] {
  const out: WarmUpBody[] = []
  for (const type of EVENT_TYPES)
    for (const encoding of ENCODINGS) {
      for (let i = 0; i < BODIES_PER_KIND; i++)
        out.push({
          type,
          encoding,
          body: encodeEvents(type, generateEvents(type, EVENTS_PER_BODY, 7 + i), encoding),
        })
      // The refusal path: cut in half, so the body is malformed in every encoding.
      const whole = out[out.length - 1]!.body
      out.push({ type, encoding, body: whole.subarray(0, whole.length >> 1) })
    }
  return out
}
