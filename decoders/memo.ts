/** A Map or a WeakMap of the inner maps, by the outer key. */
interface Memo<K1, K2, V> {
  get(outer: K1): Map<K2, V> | undefined
  set(outer: K1, byInner: Map<K2, V>): unknown
}

/**
 * The value memoized for the pair (`outer`, `inner`), made by `make` the first time the pair is
 * asked for: the compiled-once lookups of the Avro hot paths (a reader per schema id, a plan per
 * writer record type). `make` takes the keys so a caller can pass a function made once.
 */
export function memoized<K1, K2, V>(
  memo: Memo<K1, K2, V>,
  outer: K1,
  inner: K2,
  make: (outer: K1, inner: K2) => V,
): V {
  let byInner = memo.get(outer)
  if (byInner === undefined) {
    byInner = new Map()
    memo.set(outer, byInner)
  }
  let value = byInner.get(inner)
  if (value === undefined) {
    value = make(outer, inner)
    byInner.set(inner, value)
  }
  return value
}
