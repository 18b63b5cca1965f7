import { connect } from 'node:net'

/** What a broker did with a plaintext ApiVersions request. */
export type PlaintextAnswer = 'kafka' | 'not-kafka' | 'unreachable'

const CORRELATION_ID = 0x0adca7e

/**
 * Asks one broker for ApiVersions v0 over plain TCP. A TLS listener reads the request as a broken
 * TLS record and answers with a TLS alert, or closes the connection without a word: accepted, then
 * no Kafka answer, which no outage explains (a stopped broker refuses the connection, a stuck one
 * never answers).
 */
export function probePlaintext(host: string, port: number, timeoutMs: number): Promise<PlaintextAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    let connected = false
    let received = Buffer.alloc(0)
    const finish = (answer: PlaintextAnswer) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const timer = setTimeout(() => finish('unreachable'), timeoutMs)
    socket.once('connect', () => {
      connected = true
      // size, then header v1: api_key 18 (ApiVersions), api_version 0, correlation_id, client_id ""
      const request = Buffer.alloc(14)
      request.writeInt32BE(10, 0)
      request.writeInt16BE(18, 4)
      request.writeInt16BE(0, 6)
      request.writeInt32BE(CORRELATION_ID, 8)
      request.writeInt16BE(0, 12)
      socket.write(request)
    })
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      // response: size int32, correlation_id int32 — a TLS record (alert 0x15) never matches
      if (received.length >= 8) finish(received.readInt32BE(4) === CORRELATION_ID ? 'kafka' : 'not-kafka')
    })
    socket.once('error', () => finish(connected ? 'not-kafka' : 'unreachable'))
    socket.once('close', () => finish(connected ? 'not-kafka' : 'unreachable'))
  })
}

/**
 * The security problem behind a plaintext client's failure to reach any broker, or null: no broker
 * answered as Kafka, and at least one accepted the connection and answered otherwise or not at all.
 */
export async function plaintextListenerMismatch(
  brokers: readonly string[],
  timeoutMs: number,
): Promise<string | null> {
  const answers = await Promise.all(
    brokers.map((b) => {
      const colon = b.lastIndexOf(':')
      return probePlaintext(b.slice(0, colon), Number(b.slice(colon + 1)), timeoutMs)
    }),
  )
  if (answers.includes('kafka') || !answers.includes('not-kafka')) return null
  return 'the brokers do not answer plaintext Kafka requests (a TLS listener answers with an alert or a close): check KAFKA_SECURITY_PROTOCOL (SSL or SASL_SSL) and KAFKA_SSL_CA_FILE'
}
