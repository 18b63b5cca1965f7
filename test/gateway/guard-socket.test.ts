// The strict-HTTP guard reaches uWS over a unix socket in a directory only the gateway's user may
// open (no other local user can go around the guard), removed when the gateway stops.
import { existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { describe, expect, inject, it } from 'vitest'
import { startGateway } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')

function upstreamOf(logs: string): string | null {
  const line = logs.split('\n').find((l) => l.includes('"msg":"gateway listening"'))!
  return (JSON.parse(line) as { upstream: string | null }).upstream
}

describe.skipIf(brokers.length === 0)('strict-HTTP guard upstream', () => {
  it('is a unix socket in a private directory, answered through the guard, removed on stop', async () => {
    const gw = await startGateway(brokers)
    const upstream = upstreamOf(gw.logs())
    try {
      expect(upstream).toMatch(/uws\.sock$/)
      expect(statSync(upstream!).isSocket()).toBe(true)
      expect(statSync(dirname(upstream!)).mode & 0o777).toBe(0o700)
      const res = await fetch(`${gw.url}/healthz`)
      expect(res.status).toBe(200)
      await res.arrayBuffer()
    } finally {
      expect(await gw.stop()).toBe(0)
    }
    expect(existsSync(dirname(upstream!))).toBe(false)
  })

  it('is not there with ADGATE_STRICT_HTTP=off: uWS listens on the port itself', async () => {
    const gw = await startGateway(brokers, { ADGATE_STRICT_HTTP: 'off' })
    try {
      expect(upstreamOf(gw.logs())).toBeNull()
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200)
    } finally {
      expect(await gw.stop()).toBe(0)
    }
  })
})
