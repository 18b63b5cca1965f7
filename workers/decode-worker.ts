import { move, Piscina, workerData } from 'piscina'
import { warmAvroReaders } from '../decoders/avro.js'
import { warmNormalizers } from '../decoders/normalizers.js'
import { setNativeEnabled } from '../decoders/transcode.js'
import type { EventType } from '../events/catalog.js'
import { assignSchemaIds } from '../events/schemas.js'
import { attachRulesChannel } from '../quality/rules-channel.js'
import { type DecodeTask, runDecodeTask } from './decode-task.js'
import type { WorkerData } from './pool.js'
import { takeRole } from './thread-role.js'

const data = workerData as WorkerData | undefined
takeRole(data?.role ?? 'decode')
// The schema registry's ids, before anything is encoded (registry/subjects.ts).
if (data?.schemaIds) assignSchemaIds(data.schemaIds)
// Compile every schema's normalizer and Avro reader when the thread starts, not on its first
// request. The OpenRTB bid schema takes a few hundred milliseconds: it is compiled just after,
// so a thread replacing a failed one answers its first impressions at once.
const PROMPT: readonly EventType[] = ['impression', 'click', 'conversion']
warmNormalizers(PROMPT)
warmAvroReaders(PROMPT)
setTimeout(() => {
  warmNormalizers(['bid'])
  warmAvroReaders(['bid'])
}, 50)
setNativeEnabled(data?.native !== false)
attachRulesChannel(data?.rules)

/** Piscina entry point: the result's buffers are transferred, not copied, back to the main thread. */
export default function decode(task: DecodeTask): unknown {
  if (task.fault === 'crash') process.exit(1) // in a worker thread this ends the thread only
  if (task.fault === 'hang') for (;;) {}
  const result = runDecodeTask(task)
  // move() only unwraps objects it marked; this one says: send `result`, transfer its buffers.
  return move({
    [Piscina.transferableSymbol]: [result.buffer, result.rejects],
    [Piscina.valueSymbol]: result,
  } as never)
}
