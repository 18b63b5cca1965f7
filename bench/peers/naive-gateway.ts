import { createServer } from 'node:http'
import kafkajs from 'kafkajs'

/**
 * The baseline the gateway benchmark compares against, as the issue defines it: a plain
 * node:http server that JSON.parses each body and awaits one kafkajs send (acks=all) per
 * request. No validation, no batching across requests. Run: node naive-gateway.js PORT BROKERS
 */
const [port = '0', brokers = '127.0.0.1:9092'] = process.argv.slice(2)
const kafka = new kafkajs.Kafka({ brokers: brokers.split(','), logLevel: kafkajs.logLevel.NOTHING })
const producer = kafka.producer({ allowAutoTopicCreation: false })
await producer.connect()

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    let events: { auction_id?: string }[]
    try {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      events = Array.isArray(parsed) ? parsed : [parsed]
    } catch {
      res.writeHead(400).end()
      return
    }
    producer
      .send({
        topic: 'adgate.impressions',
        acks: -1,
        messages: events.map((e) => ({ key: e.auction_id ?? null, value: JSON.stringify(e) })),
      })
      .then(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"accepted":${events.length}}`),
        () => res.writeHead(503).end(),
      )
  })
})
server.listen(Number(port), '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : port}\n`)
})
process.on('SIGTERM', () => {
  server.close()
  void producer.disconnect().then(() => process.exit(0))
})
