import { readlinkSync, writeFileSync } from 'node:fs'
import { setPriority } from 'node:os'

/**
 * A decode thread takes its role as the OS sees it (Linux; elsewhere nothing happens):
 * - its name in /proc (`adgate-decode`, `adgate-probation`), so per-thread CPU (top -H,
 *   /proc/<pid>/task/<tid>/stat, the noisy-neighbour load test) says which thread burned it;
 * - the probation lane's thread runs at nice PROBATION_NICE. Its bodies are those of clients over
 *   their share of refused work; on a box whose cores are all busy, the kernel then gives the
 *   event loop and the shared workers (clients in good standing) the CPU first, and the lane what
 *   is left, instead of an equal share (issue 15: the valid client's latency beside the neighbour).
 *   Linux keeps a nice value per thread, so only this thread is lowered.
 */
export type ThreadRole = 'decode' | 'probation'

/** About a tenth of a normal thread's CPU share when both want the same core (CFS weights 110 vs 1024). */
export const PROBATION_NICE = 10

export function takeRole(role: ThreadRole): void {
  try {
    writeFileSync('/proc/thread-self/comm', `adgate-${role}`)
    if (role === 'probation') setPriority(threadId(), PROBATION_NICE)
  } catch {
    // not Linux: the name and the priority are an optimisation
  }
}

/** This thread's kernel id, from /proc/thread-self (a link to <pid>/task/<tid>). */
function threadId(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop())
}
