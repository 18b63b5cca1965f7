import { getPriority, setPriority } from 'node:os'

/**
 * The load generator stands for clients on machines of their own; here it shares the gateway's
 * cores, and when it waits for one it sends late and the latency it reports is partly its own
 * (3256cd3, a quiet box: dispatch lag p99 6.5 ms, schedule not kept). So while it measures, its
 * thread runs at nice GENERATOR_NICE when the OS allows (root or CAP_SYS_NICE; otherwise it stays
 * as it was, and the schedule check says whether it kept up). Linux keeps a nice value per thread:
 * the gateways, started before, keep theirs; processes started meanwhile are started back at the
 * niceness it had (startedAsBefore).
 */
export const GENERATOR_NICE = -5

let before: number | null = null

/** Runs `fn` with this thread raised to GENERATOR_NICE (when allowed), then puts it back. */
export async function raisedGenerator<T>(fn: () => Promise<T>): Promise<T> {
  const was = getPriority()
  try {
    setPriority(GENERATOR_NICE)
    before = was
  } catch {
    // not allowed: measured as it is
  }
  try {
    return await fn()
  } finally {
    if (before !== null) setPriority(before) // lowering is always allowed
    before = null
  }
}

/** The command to start `args` (node and its arguments) at the niceness this thread had before it was raised. */
export function startedAsBefore(args: readonly string[]): { command: string; args: string[] } {
  const raisedBy = before === null ? 0 : before - getPriority()
  if (raisedBy <= 0) return { command: args[0]!, args: args.slice(1) }
  return { command: 'nice', args: ['-n', String(raisedBy), ...args] }
}
