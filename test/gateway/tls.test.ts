// Optional TLS: with a certificate and key the same gateway serves HTTPS and WSS.
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { type RunningGateway, startGateway } from '../support/gateway.js'
import { selfSignedCert } from '../support/self-signed.js'

const brokers = inject('kafkaBrokers')

function httpsPost(
  port: number,
  path: string,
  body: Buffer,
  ca: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
        servername: 'localhost',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = ''
        res.on('data', (d) => {
          text += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

describe.skipIf(brokers.length === 0)('TLS', () => {
  let gw: RunningGateway
  let ca: Buffer
  beforeAll(async () => {
    const { cert, key } = selfSignedCert()
    ca = readFileSync(cert)
    gw = await startGateway(brokers, { ADGATE_TLS_CERT: cert, ADGATE_TLS_KEY: key })
  })
  afterAll(async () => {
    expect(await gw.stop()).toBe(0)
  })

  it('accepts events over HTTPS with a verified certificate', async () => {
    const body = encodeEvents('impression', generateEvents('impression', 3, 4242), 'json')
    const res = await httpsPost(gw.port, '/v1/impressions', body, ca)
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toMatchObject({ accepted: 3 })
  })

  it('does not speak plain HTTP on the TLS port', async () => {
    await expect(
      fetch(`http://127.0.0.1:${gw.port}/healthz`, { signal: AbortSignal.timeout(3000) }),
    ).rejects.toThrow()
  })

  it('refuses to start with only one of the two files', async () => {
    await expect(startGateway(brokers, { ADGATE_TLS_CERT: '/nonexistent.pem' })).rejects.toThrow(
      /must be set together/,
    )
  })
})
