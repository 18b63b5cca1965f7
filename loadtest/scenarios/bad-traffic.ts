import { MIX } from '../../bench/lib/mix.js'
import { type OpenLoopRequest, type OpenLoopResult, openLoop } from '../../bench/lib/open-loop.js'
import { bodies } from '../../bench/lib/servers.js'
import { CONTENT_TYPE } from '../../generator/encode.js'
import { raisedGenerator } from '../generator-priority.js'
import { type Check, contractFields, fivexx, mixedRequests, scheduleCheck } from '../lib.js'
import { p99Check, type Scenario, SLO_P99_MS, withGateway } from '../scenario.js'

const KEYS = 'good:s3cret-good:*,clicksonly:s3cret-clicks:click'
/** Offered load of the good traffic beside the bad, in events/s. */
const GOOD_EVENTS_PER_S = 20_000
/** Each bad class's rate, in requests/s. */
const BAD_RATE = 40

/** A kind of bad request and the status the gateway must answer it with. */
interface BadClass {
  name: string
  expect: number
  requests: OpenLoopRequest[]
}

/** An impression POST with this content type, API key (none: no header) and body. */
function impressionPost(contentType: string, key: string | undefined, body: Buffer): OpenLoopRequest {
  const headers: Record<string, string> = { 'content-type': contentType }
  if (key !== undefined) headers['x-api-key'] = key
  return { path: '/v1/impressions', headers, body }
}

/** The bad classes, against a gateway started with KEYS and a 256 KiB body limit. */
function badClasses(): BadClass[] {
  const impressions = bodies('impression', 'json', 4, 100)
  const huge = bodies('impression', 'ndjson', 1, 1500)[0]! // ~700 KB > 256 KiB
  const json = CONTENT_TYPE.json
  return [
    {
      name: 'malformed JSON',
      expect: 400,
      requests: impressions.map((b) =>
        impressionPost(json, 's3cret-good', b.subarray(0, Math.floor(b.length / 2))),
      ),
    },
    {
      name: 'oversized body',
      expect: 413,
      requests: [impressionPost(CONTENT_TYPE.ndjson, 's3cret-good', huge)],
    },
    { name: 'no API key', expect: 401, requests: [impressionPost(json, undefined, impressions[0]!)] },
    { name: 'unknown API key', expect: 401, requests: [impressionPost(json, 'nope', impressions[0]!)] },
    {
      name: 'key not allowed for the type',
      expect: 403,
      requests: [impressionPost(json, 's3cret-clicks', impressions[0]!)],
    },
  ]
}

/** Every request of a bad class answered with its status, none with a 5xx. */
function classCheck(c: BadClass, r: OpenLoopResult): Check {
  const codes = r.requests.status_codes
  const expected = codes[String(c.expect)] ?? 0
  return {
    name: `${c.name} → ${c.expect}`,
    ok: expected === r.requests.sent && fivexx(r) === 0 && r.requests.sent > 0,
    detail: `${expected} of ${r.requests.sent} answered ${c.expect}; codes ${JSON.stringify(codes)}; errors ${r.requests.errors}`,
  }
}

/** Good traffic at a fixed rate beside each bad class at its own: the good stays 2xx, each bad gets its 4xx. */
export const badTraffic: Scenario = async (args) =>
  withGateway(
    args,
    { ADGATE_API_KEYS: KEYS, ADGATE_MAX_BODY_BYTES: '256KiB' },
    (gw) =>
      raisedGenerator(async () => {
        const seconds = 15
        const url = gw.url
        const good = mixedRequests(MIX, { 'x-api-key': 's3cret-good' })
        const goodRate = Math.round(GOOD_EVENTS_PER_S / good.eventsPerRequest)
        const bad = badClasses()
        const g = openLoop({ url, requests: good.requests, rate: goodRate, seconds })
        const runs = bad.map((b) => openLoop({ url, requests: b.requests, rate: BAD_RATE, seconds }))
        const rg = await g
        const rbad = await Promise.all(runs)
        const checks: Check[] = [
          {
            name: 'good traffic all 200 beside the bad',
            ok: rg.requests['2xx'] === rg.requests.sent && rg.requests.errors === 0,
            detail: `${rg.requests['2xx']} of ${rg.requests.sent} 2xx, errors ${rg.requests.errors}`,
          },
          p99Check(rg.latency_ms.p99, SLO_P99_MS, 'good-traffic p99'),
          ...bad.map((c, i) => classCheck(c, rbad[i]!)),
          scheduleCheck(rg, 'good-traffic generator kept its schedule'),
        ]
        const classes = bad.map((c, i) => {
          const r = rbad[i]!
          return {
            name: c.name,
            expect: c.expect,
            requests: r.requests.sent,
            status_codes: r.requests.status_codes,
            errors: r.requests.errors,
          }
        })
        const result = {
          ...contractFields('bad-traffic', rg, good.eventsPerRequest, seconds),
          errors: rg.requests.errors + rbad.reduce((a, r) => a + r.requests.errors, 0),
          non2xx: rg.requests.non2xx + rbad.reduce((a, r) => a + r.requests.non2xx, 0),
          bad_classes: classes,
        }
        return { scenario: 'bad-traffic', result, checks }
      }),
    true,
  )
