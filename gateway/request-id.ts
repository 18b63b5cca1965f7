import { randomBytes } from 'node:crypto'

// A per-process random prefix plus a counter: unique across instances, and no crypto call per request.
const prefix = randomBytes(6).toString('hex')
let counter = 0

/** The client's X-Request-Id when it is a sane token, otherwise a fresh one. */
export function requestIdFrom(header: string): string {
  if (header.length > 0 && header.length <= 64 && /^[\w.:-]+$/.test(header)) return header
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER
  return `${prefix}-${counter.toString(36)}`
}
