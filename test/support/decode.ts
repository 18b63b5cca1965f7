import { expect } from 'vitest'
import { type BodyOptions, decodeBody } from '../../decoders/decode.js'
import type { Decoded, DecodeResult, Encoding } from '../../decoders/result.js'
import type { EventType } from '../../events/catalog.js'
import type { ErrorCode } from '../../events/errors.js'
import { options } from './events.js'
import { expectSamePaths } from './transcode.js'

/** decodeBody with the test defaults: identity encoding, a 16 MiB limit, 100 000 events. */
export function decode(
  type: EventType,
  encoding: Encoding,
  body: Buffer | string,
  extra: Partial<BodyOptions> = {},
): DecodeResult {
  const buf = typeof body === 'string' ? Buffer.from(body) : body
  const bodyOptions: BodyOptions = {
    ...options(type),
    encoding,
    contentEncoding: 'identity',
    maxBytes: 1 << 24,
    ...extra,
  }
  // Every JSON decoder test runs on both paths: the native transcoder must agree with the JS one.
  if ((encoding === 'json' || encoding === 'ndjson') && bodyOptions.contentEncoding === 'identity')
    expectSamePaths(buf, encoding === 'ndjson', bodyOptions)
  return decodeBody(buf, bodyOptions)
}

/** The decoded result, or a test failure naming the error code. */
export function ok(result: DecodeResult): Decoded {
  if (!result.ok) throw new Error(`expected events, got ${result.error.code}: ${result.error.detail}`)
  return result
}

export function expectError(result: DecodeResult, code: ErrorCode): void {
  if (result.ok)
    throw new Error(
      `expected ${code}, got ${result.events.length} events and ${result.rejects.length} rejects`,
    )
  expect(result.error.code).toBe(code)
  expect(result.error.detail.length).toBeGreaterThan(0)
}

/** The one rejection of a single-event body, without its raw bytes. */
export function onlyReject(result: DecodeResult): { index: number; field: string | null; reason: string } {
  const r = ok(result)
  expect(r.events).toEqual([])
  expect(r.rejects).toHaveLength(1)
  const { index, field, reason } = r.rejects[0]!
  return { index, field, reason }
}
