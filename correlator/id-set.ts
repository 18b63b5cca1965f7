import { type ExpiryState, expireUpTo, newExpiry, schedule } from './expiry.js'

/**
 * Event ids seen on one input partition, for dedup. An id can be forgotten once its event time
 * falls below the partition's watermark: a duplicate arriving after that is late (same event
 * time), so it is set aside as late rather than counted twice.
 */
export interface IdSetState {
  ids: Map<string, number>
  expiry: ExpiryState
}

export function newIdSet(): IdSetState {
  return { ids: new Map(), expiry: newExpiry() }
}

/** True when the id was already seen; otherwise remembers it. */
export function seen(state: IdSetState, id: string, eventTime: number): boolean {
  if (state.ids.has(id)) return true
  state.ids.set(id, eventTime)
  schedule(state.expiry, id, eventTime)
  return false
}

export function forgetBelow(state: IdSetState, bound: number): void {
  const ids = state.ids
  expireUpTo(state.expiry, bound, (id) => {
    const t = ids.get(id)
    if (t !== undefined && t < bound) ids.delete(id)
  })
}
