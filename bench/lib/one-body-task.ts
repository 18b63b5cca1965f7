import type { BodyFacts, DecodeTask } from '../../workers/decode-task.js'

/** How a one-body task is bounded: its limits and the partition count per topic. */
export type TaskLimits = Pick<DecodeTask, 'maxBytes' | 'maxEvents' | 'partitions'>

/**
 * A decode task holding just `body`, copied into a buffer of its own as the pool hands a worker one
 * (runDecodeTask transfers and reuses it). For the benches and tests that run one body at a time.
 */
export function oneBodyTask(body: Uint8Array, facts: BodyFacts, limits: TaskLimits): DecodeTask {
  const buffer = new ArrayBuffer(body.length)
  new Uint8Array(buffer).set(body)
  return { buffers: [buffer], bodies: [{ buffer: 0, offset: 0, length: body.length, ...facts }], ...limits }
}
