import { createRequire } from 'node:module'

/** What native/src/addon.cc exports. */
export interface NativeAddon {
  readonly Transcoder: new (description: unknown) => NativeTranscoder
  /** The calling thread's CPU time in ms (CLOCK_THREAD_CPUTIME_ID). */
  readonly threadCpuMs: () => number
}

export interface NativeTranscoder {
  transcode(
    body: Buffer,
    ndjson: boolean,
    maxEvents: number,
    ingestTime: number,
    source: string,
    into?: Buffer,
  ): NativeResult | undefined
}

export interface NativeResult {
  /** The output, in a new Buffer: without `into`, or when it did not fit there. */
  out?: Buffer
  /** The output is `into`'s bytes 0..outLength. */
  outLength?: number
  meta: Uint32Array
  deferred: Uint32Array
  projected?: Uint32Array
}

let loaded: { readonly addon: NativeAddon | null; readonly why: string } | undefined

/**
 * The native addon, loaded once per thread; null when it was not built (it is optional), with
 * `why` saying so.
 */
export function nativeAddon(): { readonly addon: NativeAddon | null; readonly why: string } {
  loaded ??= load()
  return loaded
}

function load(): { addon: NativeAddon | null; why: string } {
  try {
    const mod = createRequire(import.meta.url)('@adgate/native') as {
      binding: NativeAddon | null
      loadError: Error | null
    }
    return { addon: mod.binding, why: mod.loadError?.message ?? '' }
  } catch (err) {
    return { addon: null, why: (err as Error).message }
  }
}
