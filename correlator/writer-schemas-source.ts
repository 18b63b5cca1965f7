import type { WriterSchemas } from '../registry/subjects.js'
import type { EventSource } from './source.js'

/**
 * With a schema registry, a record may carry an id this process has not seen (another producer's,
 * or a newer adgate's schema version): each batch first fetches such writer schemas, once each,
 * so the synchronous decode (decode.ts) finds them. Everything else passes through.
 */
export function withWriterSchemas(source: EventSource, writers: WriterSchemas): EventSource {
  return {
    partitions: () => source.partitions(),
    start: (handlers) =>
      source.start({
        ...handlers,
        onBatch: async (records) => {
          await writers.ensure(records.map((r) => r.value))
          await handlers.onBatch(records)
        },
      }),
    commit: (positions) => source.commit(positions),
    seek: (positions) => source.seek(positions),
    stop: () => source.stop(),
    ...(source.close ? { close: () => source.close!() } : {}),
    ...(source.ends ? { ends: () => source.ends!() } : {}),
  }
}
