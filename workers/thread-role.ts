import { readlinkSync, writeFileSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

/**
 * A decode thread takes its role as the OS sees it (Linux; elsewhere nothing happens):
 * - its name in /proc (THREAD_NAMES), so per-thread CPU (top -H, /proc/<pid>/task/<tid>/stat, the
 *   noisy-neighbour load test) says which thread burned it;
 * - the probation lane's thread runs PROBATION_NICE nicer than the others. Its bodies are those of clients over
 *   their share of refused work; on a box whose cores are all busy, the kernel then gives the
 *   event loop and the shared workers (clients in good standing) the CPU first, and the lane what
 *   is left, instead of an equal share (issue 15: the valid client's latency beside the neighbour).
 *   Linux keeps a nice value per thread, so only this thread is lowered.
 */
export type ThreadRole = 'decode' | 'probation'

/** What each role's thread is called (Linux keeps 15 characters of a name). */
export const THREAD_NAMES: Readonly<Record<ThreadRole, string>> = {
  decode: 'adgate-decode',
  probation: 'adgate-lane',
}

/**
 * How much nicer than the thread that starts it the lane's thread runs (at most 19): about a tenth
 * of its CPU share when both want the same core (CFS weights 110 vs 1024 at nice 10 vs 0). Relative,
 * so a gateway started under `nice` still has its lane below its other threads.
 */
export const PROBATION_NICE = 10

export function takeRole(role: ThreadRole): void {
  try {
    writeFileSync('/proc/thread-self/comm', THREAD_NAMES[role])
    if (role === 'probation') setPriority(threadId(), Math.min(19, getPriority() + PROBATION_NICE))
  } catch {
    // not Linux: the name and the priority are an optimisation
  }
}

/** This thread's kernel id, from /proc/thread-self (a link to <pid>/task/<tid>). */
function threadId(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop())
}
