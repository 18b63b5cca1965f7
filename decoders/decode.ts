import type { BodyError } from '../events/errors.js'
import { decodeAvro } from './avro.js'
import { type ContentEncoding, decompressBody } from './content-encoding.js'
import { decodeCsv } from './csv.js'
import { decodeJson } from './json.js'
import type { DecodeOptions, DecodeResult, Encoding } from './result.js'
import { type TranscodeResult, transcodeDecoded, transcodeJson } from './transcode.js'

export interface BodyOptions extends DecodeOptions {
  readonly encoding: Encoding
  readonly contentEncoding: ContentEncoding
  /** Upper bound of the body after decompression. */
  readonly maxBytes: number
}

/** Bytes as received → events and rejections. Never throws on bad input. */
export function decodeBody(body: Buffer, options: BodyOptions): DecodeResult {
  const plain = textBody(decompressBody(body, options.contentEncoding, options.maxBytes), options.encoding)
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

/**
 * Bytes as received → wire-format values, what the workers send to Kafka (see transcode.ts): JSON
 * and NDJSON natively when the addon is built, CSV and Avro through their decoders.
 */
export function transcodeBody(
  body: Buffer,
  options: BodyOptions,
  projection?: readonly string[],
): TranscodeResult {
  const plain = textBody(decompressBody(body, options.contentEncoding, options.maxBytes), options.encoding)
  if (!Buffer.isBuffer(plain)) return { ok: false, error: plain as BodyError }
  if (options.encoding === 'json' || options.encoding === 'ndjson')
    return transcodeJson(plain, options.encoding === 'ndjson', options, projection)
  const decoded =
    options.encoding === 'csv' ? decodeCsv(plain, options) : decodeAvro(plain, options, options.maxBytes)
  return decoded.ok ? transcodeDecoded(decoded, options, projection) : decoded
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf])

/**
 * One rule for every text encoding (JSON, NDJSON, CSV): a leading UTF-8 byte-order mark is
 * ignored, as RFC 8259 §8.1 allows and spreadsheet exports need (Excel writes one). Avro is binary.
 */
function textBody(plain: Buffer | BodyError, encoding: Encoding): Buffer | BodyError {
  if (!Buffer.isBuffer(plain) || encoding === 'avro') return plain
  return plain.length >= 3 && plain[0] === 0xef && plain[1] === 0xbb && plain[2] === 0xbf
    ? plain.subarray(BOM.length)
    : plain
}
