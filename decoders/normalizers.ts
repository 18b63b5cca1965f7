import { EVENT_TYPES, type EventType } from '../events/catalog.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { compileNormalizer, type Mode, type Violation } from './normalize.js'

type Normalize = (value: unknown) => unknown | Violation

/** One compiled normalizer per event type and input mode, built on first use and kept. */
const cache = new Map<string, Normalize>()

export function normalizerFor(type: EventType, mode: Mode): Normalize {
  const key = `${type}:${mode}`
  let n = cache.get(key)
  if (!n) {
    n = compileNormalizer(EVENT_SCHEMAS[type].model, mode)
    cache.set(key, n)
  }
  return n
}

/** Compile up front (workers call this at start so the first request pays nothing). */
export function warmNormalizers(types: readonly EventType[] = EVENT_TYPES): void {
  for (const t of types) for (const m of ['json', 'text', 'avro'] as const) normalizerFor(t, m)
}
