import { createServer } from 'node:http'
import { ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka'

/**
 * The baseline the gateway benchmark compares against, as the issue defines it: a plain
 * node:http server that JSON.parses each body and awaits one Kafka send (acks=all) per
 * request, with the client library every adgate role uses (@platformatic/kafka). No validation, no batching across requests. Run: node naive-gateway.js PORT BROKERS
 */
const [port = '0', brokers = '127.0.0.1:9092'] = process.argv.slice(2)
const producer = new Producer({
  clientId: 'naive-gateway',
  bootstrapBrokers: brokers.split(','),
  acks: ProduceAcks.ALL,
  autocreateTopics: false,
  serializers: stringSerializers,
})

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
        messages: events.map((e) => ({
          topic: 'adgate.impressions',
          key: e.auction_id,
          value: JSON.stringify(e),
        })),
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
  void producer.close().then(() => process.exit(0))
})
