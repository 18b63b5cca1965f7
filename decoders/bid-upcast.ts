import type { SchemaVersion } from '../events/schemas.js'
import { SUBJECTS } from '../events/schemas.js'

/**
 * Bid events written with schemas/bid.v1.avsc (the OpenRTB-shaped request flat beside adgate's
 * fields, floors only in micros) → the envelope (v2 on) with the OpenRTB request in `request`, as JSON
 * input would give it. Avro schema resolution cannot move fields into a nested record, so Avro
 * bodies whose writer schema has v1's shape are read with v1 and upcast here; the json-mode
 * normalizer then checks the result like any posted request.
 */
export const BID_V1: SchemaVersion = SUBJECTS.get('adgate.bids-value')![0]!

/** Whether a writer schema (parsed .avsc JSON) has v1's shape: the request's fields at the top. */
export function isV1BidSchema(writer: unknown): boolean {
  const fields = (writer as { fields?: { name: string }[] }).fields
  return (
    Array.isArray(fields) && fields.some((f) => f.name === 'imp') && !fields.some((f) => f.name === 'request')
  )
}

type V1 = Record<string, unknown>

export function upcastBidV1(v1: V1): V1 {
  const {
    event_id,
    event_time,
    campaign_id,
    bid_price_micros,
    imp,
    site,
    app,
    device,
    user,
    tmax,
    cur,
    test,
    ext,
    id,
    ingest_time: _ingestTime,
    source: _source,
    // Fields v1 does not name either (a writer's own, kept by avro-unknown.ts): in v1's flat shape
    // they were the request's, so they join it (the normalizer keeps those v2 does not model).
    ...unknown
  } = v1
  return {
    event_id,
    event_time,
    campaign_id,
    bid_price_micros,
    request: present({
      id,
      imp: (imp as V1[]).map(({ bidfloor_micros, ...rest }) =>
        present({ ...rest, bidfloor: (bidfloor_micros as number) / 1e6 }),
      ),
      site: nested(site),
      app: nested(app),
      device: nested(device),
      user: nested(user),
      tmax,
      cur,
      test,
      ext,
      ...unknown,
    }),
  }
}

// v1 filled absent values with null; in v2 a null is an absent field.
function present(o: V1): V1 {
  const out: V1 = {}
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = nested(v)
  return out
}

function nested(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) return v
  return present(v as V1)
}
