import type { RejectInfo, TaskResult } from '../../workers/decode-task.js'

/** Body i's outcome with its rejects read back from the JSON the worker wrote for the answer. */
export function outcomeOf(result: TaskResult, i: number) {
  const outcome = result.outcomes[i]!
  const at = outcome.rejects
  const json = at === null ? '[]' : Buffer.from(result.rejects, at.offset, at.length).toString()
  return { ...outcome, rejects: JSON.parse(json) as RejectInfo[] }
}
