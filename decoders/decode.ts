import type { BodyError } from '../events/errors.js'
import { decodeAvro } from './avro.js'
import { type ContentEncoding, decompressBody } from './content-encoding.js'
import { decodeCsv } from './csv.js'
import { decodeJson } from './json.js'
import type { DecodeOptions, DecodeResult, Encoding } from './result.js'

export interface BodyOptions extends DecodeOptions {
  readonly encoding: Encoding
  readonly contentEncoding: ContentEncoding
  /** Upper bound of the body after decompression. */
  readonly maxBytes: number
}

/** Bytes as received → events and rejections. Never throws on bad input. */
export function decodeBody(body: Buffer, options: BodyOptions): DecodeResult {
  const plain = decompressBody(body, options.contentEncoding, options.maxBytes)
  if (!Buffer.isBuffer(plain)) return { ok: false, error: plain as BodyError }
  switch (options.encoding) {
    case 'json':
      return decodeJson(plain, false, options)
    case 'ndjson':
      return decodeJson(plain, true, options)
    case 'csv':
      return decodeCsv(plain, options)
    case 'avro':
      return decodeAvro(plain, options, options.maxBytes)
  }
}
