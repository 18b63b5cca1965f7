/**
 * Keys grouped by the minute they expire in, so advancing a watermark touches only what expires.
 * Plain data (a Map and a sorted array) so a snapshot is a structured clone.
 */
const SLOT_MS = 60_000

export interface ExpiryState {
  slots: Map<number, string[]>
  /** Slot numbers present in `slots`, ascending. */
  order: number[]
}

export function newExpiry(): ExpiryState {
  return { slots: new Map(), order: [] }
}

export function schedule(state: ExpiryState, key: string, expireAt: number): void {
  const slot = Math.floor(expireAt / SLOT_MS)
  let keys = state.slots.get(slot)
  if (keys === undefined) {
    keys = []
    state.slots.set(slot, keys)
    insertSorted(state.order, slot)
  }
  keys.push(key)
}

/**
 * Calls `expire(key)` for every key scheduled in a slot that ends at or before `bound`. The callee
 * re-checks the key's own expiry time: a key may have been rescheduled or removed since.
 */
export function expireUpTo(state: ExpiryState, bound: number, expire: (key: string) => void): void {
  const order = state.order
  let n = 0
  while (n < order.length && (order[n]! + 1) * SLOT_MS <= bound) {
    const keys = state.slots.get(order[n]!)!
    state.slots.delete(order[n]!)
    for (const k of keys) expire(k)
    n++
  }
  if (n > 0) order.splice(0, n)
}

function insertSorted(order: number[], slot: number): void {
  // Slots arrive mostly in ascending order: check the end first.
  let i = order.length
  if (i === 0 || order[i - 1]! < slot) {
    order.push(slot)
    return
  }
  let lo = 0
  let hi = i
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (order[mid]! < slot) lo = mid + 1
    else hi = mid
  }
  i = lo
  order.splice(i, 0, slot)
}

/** Adds `event` to the list waiting for a partner under `key`; a new list is scheduled at `time`. */
export function addWaiting<E>(
  state: ExpiryState,
  waiting: Map<string, E[]>,
  key: string,
  event: E,
  time: number,
): void {
  const list = waiting.get(key)
  if (list !== undefined) list.push(event)
  else {
    waiting.set(key, [event])
    schedule(state, key, time)
  }
}

/**
 * Expires lists of events waiting for a partner (a bid's impressions, an impression's orphan clicks):
 * a list whose newest event is below `bound` is dropped, any other is rescheduled at its newest.
 * Returns how many events were dropped.
 */
export function expireWaiting<K extends string, E extends Record<K, number>>(
  state: ExpiryState,
  waiting: Map<string, E[]>,
  bound: number,
  time: K,
): number {
  let dropped = 0
  expireUpTo(state, bound, (key) => {
    const list = waiting.get(key)
    if (list === undefined) return
    let newest = Number.NEGATIVE_INFINITY
    for (const e of list) if (e[time] > newest) newest = e[time]
    if (newest < bound) {
      waiting.delete(key)
      dropped += list.length
    } else schedule(state, key, newest)
  })
  return dropped
}
