import { isUtf8 } from 'node:buffer'
import { bodyError } from '../events/errors.js'
import { Violation } from './normalize.js'
import { normalizerFor } from './normalizers.js'
import type { DecodeOptions, DecodeResult, Rejection } from './result.js'
import { overBudget, rejection, singleRejection, stamp, tooCostly, tooManyEvents } from './result.js'

/**
 * JSON bodies: one object, an array of objects (application/json), or one object per line
 * (application/x-ndjson). JSON.parse builds the objects: measured faster here than simdjson's
 * parse, which crosses N-API per value (see bench/results/decoders.json).
 */
export function decodeJson(body: Buffer, ndjson: boolean, options: DecodeOptions): DecodeResult {
  if (!isUtf8(body)) return { ok: false, error: bodyError('INVALID_UTF8', 'the body is not valid UTF-8') }
  const text = body.toString('utf8')
  return ndjson ? decodeLines(text, options) : decodeDocument(text, options)
}

function decodeDocument(text: string, options: DecodeOptions): DecodeResult {
  if (nestedTooDeep(text)) return { ok: false, error: bodyError('MALFORMED_BODY', TOO_DEEP) }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    return { ok: false, error: bodyError('MALFORMED_BODY', `invalid JSON: ${(err as Error).message}`) }
  }
  const items = Array.isArray(doc) ? doc : [doc]
  if (!Array.isArray(doc) && (doc === null || typeof doc !== 'object')) {
    return { ok: false, error: bodyError('MALFORMED_BODY', 'expected a JSON object or an array of objects') }
  }
  if (items.length === 0) return { ok: false, error: bodyError('EMPTY_BODY', 'the array is empty') }
  if (items.length > options.maxEvents) return tooManyEvents(options.maxEvents)

  const normalize = normalizerFor(options.type, 'json')
  const events: object[] = []
  const rejects: Rejection[] = []
  for (let i = 0; i < items.length; i++) {
    if (overBudget(options, i)) return tooCostly()
    const out = normalize(items[i])
    if (out instanceof Violation) rejects.push(rejection(i, out.errors, rawOf(items[i])))
    else {
      stamp(out as object, options)
      events.push(out as object)
    }
  }
  return { ok: true, events, rejects }
}

function decodeLines(text: string, options: DecodeOptions): DecodeResult {
  const normalize = normalizerFor(options.type, 'json')
  const events: object[] = []
  const rejects: Rejection[] = []
  let index = 0
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    const line = text.slice(start, end)
    start = end + 1
    if (isBlank(line)) continue
    if (index === options.maxEvents) return tooManyEvents(options.maxEvents)
    if (overBudget(options, index)) return tooCostly()
    if (nestedTooDeep(line)) {
      rejects.push(singleRejection(index, null, `invalid JSON: ${TOO_DEEP}`, Buffer.from(line)))
      index++
      continue
    }
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (err) {
      rejects.push(singleRejection(index, null, `invalid JSON: ${(err as Error).message}`, Buffer.from(line)))
      index++
      continue
    }
    const out = normalize(value)
    if (out instanceof Violation) rejects.push(rejection(index, out.errors, Buffer.from(line)))
    else {
      stamp(out as object, options)
      events.push(out as object)
    }
    index++
  }
  if (index === 0) return { ok: false, error: bodyError('EMPTY_BODY', 'no lines with events') }
  return { ok: true, events, rejects }
}

function isBlank(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c !== 32 && c !== 9 && c !== 13) return false
  }
  return true
}

/**
 * Nesting no event comes near (the OpenRTB bid's `ext` objects are rejected per event past
 * MAX_JSON_FIELD_DEPTH): deeper text is refused whole before JSON.parse, whose time grows with the
 * nesting far more than with the bytes (200k nested arrays, 400 KB: ~150 ms of a decoder thread).
 */
export const MAX_JSON_DEPTH = 1000
export const TOO_DEEP = `nested deeper than ${MAX_JSON_DEPTH} levels`

/** Whether JSON text nests arrays and objects deeper than MAX_JSON_DEPTH; one pass, strings skipped. */
export function nestedTooDeep(text: string): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // a backslash: the next character is escaped
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      if (++depth > MAX_JSON_DEPTH) return true
    } else if (c === 93 || c === 125) depth--
  }
  return false
}

// An array element has no byte range of its own once parsed; its JSON text stands in for it.
export function rawOf(value: unknown): Buffer {
  try {
    return Buffer.from(JSON.stringify(value) ?? 'null')
  } catch {
    return Buffer.from('"<unserialisable>"')
  }
}
