import { gunzipSync } from 'node:zlib'
import { decodeLz4Frames, Lz4Error } from '../codecs/lz4-frame.js'
import { type BodyError, bodyError } from '../events/errors.js'

/** Content-Encoding values accepted on request bodies. */
export const CONTENT_ENCODINGS = ['identity', 'gzip', 'lz4'] as const
export type ContentEncoding = (typeof CONTENT_ENCODINGS)[number]

export function parseContentEncoding(header: string | undefined): ContentEncoding | undefined {
  const value = (header ?? '').trim().toLowerCase()
  if (value === '' || value === 'identity') return 'identity'
  if (value === 'gzip' || value === 'x-gzip') return 'gzip'
  if (value === 'lz4') return 'lz4'
  return undefined
}

/** Undo the Content-Encoding, never producing more than `maxBytes` (zip bombs get a 413). */
export function decompressBody(
  body: Buffer,
  encoding: ContentEncoding,
  maxBytes: number,
): Buffer | BodyError {
  if (encoding === 'identity') return body
  try {
    if (encoding === 'gzip') return gunzipSync(body, { maxOutputLength: maxBytes })
    return decodeLz4Frames(body, maxBytes)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || (err instanceof Lz4Error && err.tooLarge)) {
      return bodyError('BODY_TOO_LARGE', `the decompressed body is larger than ${maxBytes} bytes`)
    }
    return bodyError('MALFORMED_BODY', `cannot decompress the ${encoding} body: ${e.message}`)
  }
}
