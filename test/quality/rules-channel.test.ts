// Rules reach the workers through shared memory: a publish is seen by the next task, a reader on
// another thread sees the same version, and nothing is recompiled while the version holds.
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import type { Rule } from '../../quality/rules.js'
import { activeRules, attachRulesChannel, RulesChannel, useRules } from '../../quality/rules-channel.js'

const RULE: Rule = {
  name: 'cost',
  types: ['impression'],
  kind: 'range',
  severity: 'reject',
  field: 'cost_micros',
  max: 10,
}

afterEach(() => useRules(null))

describe('rules channel', () => {
  it('publishes, and readers see the latest version; null is "no rules"', () => {
    const ch = RulesChannel.create(4096)
    expect(ch.read().rules).toBeNull()
    ch.publish([RULE])
    const first = ch.read()
    expect(first.rules).toEqual([RULE])
    ch.publish([{ ...RULE, max: 20 }])
    const second = ch.read()
    expect(second.sequence).toBeGreaterThan(first.sequence)
    expect(second.rules![0]!.max).toBe(20)
    ch.publish(null)
    expect(ch.read().rules).toBeNull()
  })

  it('refuses rules larger than its buffer, keeping the old version', () => {
    const ch = RulesChannel.create(160)
    ch.publish([RULE])
    expect(() => ch.publish([{ ...RULE, message: 'x'.repeat(200) }])).toThrow(/more than the 160 bytes/)
    expect(ch.read().rules).toEqual([RULE])
  })

  it('activeRules compiles once per version', () => {
    const ch = RulesChannel.create(4096)
    ch.publish([RULE])
    attachRulesChannel(ch.buffer)
    const a = activeRules()
    expect(activeRules()).toBe(a)
    expect(a!.byType.impression!.evaluate({ cost_micros: 11 })?.reject?.rule).toBe('cost')
    ch.publish([{ ...RULE, max: 100 }])
    const b = activeRules()
    expect(b).not.toBe(a)
    expect(b!.byType.impression!.evaluate({ cost_micros: 11 })).toBeNull()
  })

  it('a worker thread reads what the main thread published', async () => {
    const ch = RulesChannel.create(4096)
    ch.publish([RULE])
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads')
       const ints = new Int32Array(workerData, 0, 2)
       const len = Atomics.load(ints, 1)
       parentPort.postMessage(Buffer.from(new Uint8Array(workerData, 8, len)).toString())`,
      { eval: true, workerData: ch.buffer },
    )
    const text = await new Promise<string>((resolve) => w.once('message', resolve))
    await w.terminate()
    expect(JSON.parse(text)).toEqual([RULE])
  })
})
