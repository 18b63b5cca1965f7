import { describe, expect, it } from 'vitest'
import { skipSummary } from './support/skip-summary.js'

describe('the skipped-tests summary', () => {
  it('says nothing when every test ran', () => {
    expect(skipSummary(new Map(), 12, [])).toBe('')
  })

  it('counts the skipped tests per file and names what is missing', () => {
    const text = skipSummary(
      new Map([
        ['test/gateway/tls.test.ts', 3],
        ['test/correlator/kafka.test.ts', 5],
      ]),
      40,
      [{ name: 'java', needed: 'the local Kafka broker' }],
    )
    expect(text).toContain('8 of 40 tests were SKIPPED')
    expect(text).toMatch(/5 {2}test\/correlator\/kafka\.test\.ts\n.*3 {2}test\/gateway\/tls\.test\.ts/)
    expect(text).toContain('java: needed by the local Kafka broker')
  })
})
