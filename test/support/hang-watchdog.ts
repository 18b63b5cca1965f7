// A vitest reporter that turns a hung test run into a failure that names the test. Vitest's test and
// hook timeouts are timers in the worker: code that never yields (a loop in a decoder, a blocked
// native call) stops them too, and the run then waits forever — CI once spent its whole 90 minutes
// so, its log ending at the last file that finished. Here, in vitest's own process, a clock watches
// for progress (a file, hook or test starting or ending); after a silence longer than any timeout
// allows (ADGATE_TEST_HANG_MS sets it), it prints what was running and kills the stuck worker processes,
// which vitest reports as failed files before it goes on with the rest.
import { readdirSync, readFileSync } from 'node:fs'
import type { ReportedHookContext, Reporter, TestCase, TestModule, Vitest } from 'vitest/node'

/** Worker processes of this vitest: children of this process running vitest's fork worker. */
function forkWorkers(): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== process.pid) continue
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('vitest/dist/workers/'))
        pids.push(Number(entry))
    } catch {
      // the process ended while being read
    }
  }
  return pids
}

export default class HangWatchdog implements Reporter {
  /** Silence that means a hang, outside tests with long timeouts of their own. */
  private baseLimitMs = 0
  private lastProgress = Date.now()
  private timer: NodeJS.Timeout | undefined
  /** What each unfinished file last did, when, and how much silence that allows. */
  private readonly running = new Map<string, { what: string; since: number; allowMs: number }>()

  onInit(vitest: Vitest): void {
    const { testTimeout, hookTimeout } = vitest.config
    // Silence longer than twice the longest timeout and a minute (10 min at least: hooks may set
    // longer ones, which reporters cannot see) is no slow test: it is a hang.
    this.baseLimitMs =
      Number(process.env.ADGATE_TEST_HANG_MS) ||
      Math.max(600_000, 2 * Math.max(testTimeout, hookTimeout) + 60_000)
  }

  onTestRunStart(): void {
    this.progress()
    this.timer = setInterval(() => this.check(), Math.min(10_000, this.baseLimitMs / 4))
    this.timer.unref()
  }

  onTestRunEnd(): void {
    clearInterval(this.timer)
  }

  onTestModuleStart(m: TestModule): void {
    this.note(m, 'its start')
  }

  onHookStart(hook: ReportedHookContext): void {
    this.noteHook(hook, 'start')
  }

  onHookEnd(hook: ReportedHookContext): void {
    this.noteHook(hook, 'end')
  }

  onTestCaseReady(test: TestCase): void {
    // A test with a long timeout of its own may be silent that long, and more under load.
    const own = test.options.timeout
    this.note(test.module, `the start of test "${test.fullName}"`, own ? 2 * own + 60_000 : 0)
  }

  onTestCaseResult(test: TestCase): void {
    this.note(test.module, `the end of test "${test.fullName}"`)
  }

  onTestModuleEnd(m: TestModule): void {
    this.running.delete(m.moduleId)
    this.progress()
  }

  private note(m: TestModule, what: string, allowMs = 0): void {
    this.running.set(m.moduleId, { what, since: Date.now(), allowMs: Math.max(this.baseLimitMs, allowMs) })
    this.progress()
  }

  private noteHook(hook: ReportedHookContext, edge: 'start' | 'end'): void {
    const e = hook.entity
    const module = e.type === 'module' ? e : e.module
    this.note(module, `the ${edge} of ${hook.name} of ${e.type === 'module' ? 'the file' : e.name}`)
  }

  private progress(): void {
    this.lastProgress = Date.now()
  }

  private check(): void {
    const silent = Date.now() - this.lastProgress
    let limitMs = this.baseLimitMs
    for (const { allowMs } of this.running.values()) limitMs = Math.max(limitMs, allowMs)
    if (silent < limitMs) return
    const lines = [`HUNG: no test progress for ${Math.round(silent / 1000)} s (limit ${limitMs / 1000} s).`]
    for (const [file, { what, since }] of this.running)
      lines.push(`  ${file}: last reported ${what}, ${Math.round((Date.now() - since) / 1000)} s ago`)
    const workers = forkWorkers()
    lines.push(
      workers.length > 0
        ? `killing worker processes ${workers.join(', ')}`
        : 'no worker process to kill: exiting',
    )
    process.stderr.write(`\n${lines.join('\n')}\n`)
    if (workers.length === 0) process.exit(1)
    for (const pid of workers) process.kill(pid, 'SIGKILL')
    // Vitest reports the killed files and goes on; should it wait on them instead, the next check
    // (a minute on) ends the run.
    this.running.clear()
    this.progress()
    this.baseLimitMs = Math.min(this.baseLimitMs, 60_000)
  }
}
