// One request body through a worker's decode task, in-process, as a worker thread runs it.
import { oneBodyTask, type TaskLimits } from '../../bench/lib/one-body-task.js'
import { type BodyFacts, runDecodeTask, type TaskResult } from '../../workers/decode-task.js'

/** The facts a test leaves out: an identity body from source "s", request "r1", a fixed ingest time. */
const DEFAULT_FACTS = {
  contentEncoding: 'identity',
  source: 's',
  requestId: 'r1',
  ingestTime: 1_795_000_000_000,
} as const

export function runOneBody(
  body: Uint8Array | string,
  facts: Pick<BodyFacts, 'type' | 'encoding'> & Partial<BodyFacts>,
  limits: TaskLimits,
): TaskResult {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  return runDecodeTask(oneBodyTask(bytes, { ...DEFAULT_FACTS, ...facts }, limits))
}
