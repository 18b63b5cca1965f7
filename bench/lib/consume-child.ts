// One consumer for the consume bench (bench/consume.ts): `<kafka-source.js url> <brokers> <prefix>
// <group> <records>` loads the correlator's KafkaSource from that build (this one, or an earlier
// commit's), reads the bench's event topics from offset 0 as a fresh group, touching every record
// as the correlator would (its value's length), and prints one JSON line once `records` arrived:
// the seconds and CPU seconds from the first batch handed over to the last.
import type { EventSource } from '../../correlator/source.js'
import { inputTopics, topicNames } from '../../correlator/topics.js'

const [moduleUrl, brokerList, prefix, group, total] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
]
const { KafkaSource } = (await import(moduleUrl)) as {
  KafkaSource: new (o: Record<string, unknown>) => EventSource
}
const names = topicNames(prefix)
const source = new KafkaSource({
  brokers: brokerList.split(','),
  clientId: 'bench-consume',
  groupId: group,
  topics: inputTopics(false, names),
  names,
})
const want = Number(total)
let records = 0
let bytes = 0
let t0 = 0
let cpu0: NodeJS.CpuUsage | undefined
const done = new Promise<{ seconds: number; cpuSeconds: number }>((resolve) => {
  void source.start({
    async onBatch(batch) {
      if (cpu0 === undefined) {
        cpu0 = process.cpuUsage()
        t0 = performance.now()
      }
      for (const r of batch) bytes += r.value.length
      records += batch.length
      if (records >= want) {
        const cpu = process.cpuUsage(cpu0)
        resolve({ seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 })
      }
    },
  })
})
const r = await done
process.stdout.write(`${JSON.stringify({ records, bytes, ...r })}\n`)
await source.stop()
await source.close?.() // builds before the clean-stop fix closed in stop()
process.exit(0)
