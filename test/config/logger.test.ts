import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger, type LogDestination } from '../../config/logger.js'

function capture(isTTY: boolean): { out: LogDestination; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY })
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  return { out: stream, text: () => Buffer.concat(chunks).toString('utf8') }
}

describe('createLogger', () => {
  it('writes one JSON object per line, errors with their type and stack, when not on a terminal', async () => {
    const { out, text } = capture(false)
    const logger = createLogger('info', 'test', out)
    logger.error({ err: new TypeError('boom') }, 'delivery failed unexpectedly')
    logger.flush()
    await new Promise((r) => setImmediate(r))
    const record = JSON.parse(text().trim())
    expect(record).toMatchObject({ service: 'test', msg: 'delivery failed unexpectedly' })
    expect(record.err).toMatchObject({ type: 'TypeError', message: 'boom' })
    expect(record.err.stack).toMatch(/TypeError: boom\n\s+at /)
  })

  it('writes readable lines, not JSON, on a terminal', async () => {
    const { out, text } = capture(true)
    createLogger('info', 'test', out).warn({ apiKey: 'hidden' }, 'spool replay paused')
    await new Promise((r) => setImmediate(r))
    expect(text()).toMatch(/WARN.*spool replay paused/)
    expect(text()).not.toMatch(/^\{/)
    expect(text()).toContain('[redacted]')
    expect(text()).not.toContain('hidden')
  })
})
