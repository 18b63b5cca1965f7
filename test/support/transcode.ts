import { expect } from 'vitest'
import type { DecodeOptions } from '../../decoders/result.js'
import { SPAN, type TranscodeResult, transcodeJsonJs, transcodeJsonNative } from '../../decoders/transcode.js'

/** Everything a caller can observe of a transcode result, as plain data for deep equality. */
export function observable(r: TranscodeResult) {
  if (!r.ok) return { error: r.error }
  const events = []
  for (let i = 0; i < r.count; i++) {
    const s = i * SPAN
    events.push({
      index: r.spans[s],
      value: r.buffer.subarray(r.spans[s + 1]!, r.spans[s + 2]!).toString('hex'),
      key: r.buffer.subarray(r.spans[s + 3]!, r.spans[s + 4]!).toString('hex'),
    })
  }
  return {
    events,
    rejects: r.rejects.map((x) => ({ ...x, raw: x.raw.toString('hex') })),
    views: r.views,
  }
}

/**
 * Both paths on one body: the native result must equal the JS reference exactly (Avro bytes,
 * keys, indexes, rejections with their raw bytes, whole-body errors, projected values).
 * Returns the JS result. Throws when the addon is not built: tests require it.
 */
export function expectSamePaths(
  body: Buffer,
  ndjson: boolean,
  options: DecodeOptions,
  projection?: readonly string[],
): TranscodeResult {
  const { js, seen } = bothPaths(body, ndjson, options, projection)
  expect(seen.native).toEqual(seen.js)
  return js
}

/** Same, as a boolean for fast-check properties (a mismatch is reported by the caller). */
export function samePaths(
  body: Buffer,
  ndjson: boolean,
  options: DecodeOptions,
  projection?: readonly string[],
): boolean {
  const { seen } = bothPaths(body, ndjson, options, projection)
  return JSON.stringify(seen.native) === JSON.stringify(seen.js)
}

/** Both transcoders' results on one body: the JS one, and what is observable of each. */
function bothPaths(body: Buffer, ndjson: boolean, options: DecodeOptions, projection?: readonly string[]) {
  const js = transcodeJsonJs(body, ndjson, options, projection)
  const native = transcodeJsonNative(body, ndjson, options, projection)
  if (native === null) throw new Error('the native addon is not built (npm ci builds it; see native/)')
  return { js, seen: { native: observable(native), js: observable(js) } }
}
