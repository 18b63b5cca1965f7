// The request mix the load tests offer and the bench report describes: shared by loadtest/ and
// bench/report.ts through this library, so neither imports the other.
import type { Encoding } from '../../decoders/result.js'
import type { EventType } from '../../events/catalog.js'

/** One kind of request in a mix: `weight` requests of it per cycle of the mix. */
export interface Kind {
  type: EventType
  encoding: Encoding
  eventsPerRequest: number
  weight: number
}

/**
 * The realistic mix (bids ≫ impressions ≫ clicks ≫ conversions), each in its primary encoding
 * and batched as ad servers send them. Per cycle of 50 requests: 30 bid batches of 100 (Avro),
 * 12 impression batches of 100 (JSON), 6 click batches of 20 (CSV), 2 conversion batches of 5
 * (CSV) = 3000 : 1200 : 120 : 10 events.
 */
export const MIX: Kind[] = [
  { type: 'bid', encoding: 'avro', eventsPerRequest: 100, weight: 30 },
  { type: 'impression', encoding: 'json', eventsPerRequest: 100, weight: 12 },
  { type: 'click', encoding: 'csv', eventsPerRequest: 20, weight: 6 },
  { type: 'conversion', encoding: 'csv', eventsPerRequest: 5, weight: 2 },
]
