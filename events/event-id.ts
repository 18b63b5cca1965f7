import { createHash } from 'node:crypto'

/**
 * The event id of an event whose sender gave none (an OpenRTB bid request posted as its sender has
 * it): a hash of the API key's name and the event's Kafka key (the auction id), so the same request
 * sent again — a retry — gets the same id and the correlator's dedup drops the copy. 32 hex digits
 * of SHA-256: collisions between distinct requests are out of reach.
 */
export function derivedEventId(source: string, key: string): string {
  return createHash('sha256').update(source).update('\u0000').update(key).digest('hex').slice(0, 32)
}
