// A plaintext client against a TLS listener: told apart from an outage (kafka/listener-probe.ts).

import { readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { plaintextListenerMismatch, probePlaintext } from '../../kafka/listener-probe.js'
import { selfSignedCert } from '../support/self-signed.js'

const listen = (server: Server): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )

describe('probePlaintext', () => {
  let dir = ''
  let tls: Server
  let kafkaLike: Server
  let tlsPort = 0
  let kafkaPort = 0
  let closedPort = 0

  beforeAll(async () => {
    const made = selfSignedCert()
    dir = made.dir
    const { cert, key } = made
    tls = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) })
    tls.on('tlsClientError', () => {})
    tlsPort = await listen(tls)
    // answers as a plaintext Kafka listener answers ApiVersions: size, then the request's correlation id
    kafkaLike = createServer((s) =>
      s.once('data', (req: Buffer) => {
        const res = Buffer.alloc(10)
        res.writeInt32BE(6, 0)
        res.writeInt32BE(req.readInt32BE(8), 4)
        s.write(res)
      }),
    )
    kafkaPort = await listen(kafkaLike)
    const gone = createServer()
    closedPort = await listen(gone)
    await new Promise((r) => gone.close(r))
  })
  afterAll(() => {
    tls.close()
    kafkaLike.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a TLS listener does not answer the plaintext request as Kafka', async () => {
    expect(await probePlaintext('127.0.0.1', tlsPort, 5000)).toBe('not-kafka')
  })
  it('a plaintext listener answers', async () => {
    expect(await probePlaintext('127.0.0.1', kafkaPort, 5000)).toBe('kafka')
  })
  it('a stopped broker is unreachable, not a mismatch', async () => {
    expect(await probePlaintext('127.0.0.1', closedPort, 5000)).toBe('unreachable')
    expect(await plaintextListenerMismatch([`127.0.0.1:${closedPort}`], 5000)).toBeNull()
  })
  it('names KAFKA_SECURITY_PROTOCOL only when no broker answered and one answered otherwise', async () => {
    expect(
      await plaintextListenerMismatch([`127.0.0.1:${tlsPort}`, `127.0.0.1:${closedPort}`], 5000),
    ).toMatch(/KAFKA_SECURITY_PROTOCOL/)
    expect(
      await plaintextListenerMismatch([`127.0.0.1:${tlsPort}`, `127.0.0.1:${kafkaPort}`], 5000),
    ).toBeNull()
  })
})
