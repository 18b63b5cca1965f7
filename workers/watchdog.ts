/**
 * What a task runner is told of a task's deadline. piscina takes any object with `aborted` and
 * `once`/`off` (or `removeListener`) for 'abort' as a task's signal: when it fires, the task is
 * dropped from the queue, or its worker thread is terminated and replaced.
 */
export interface TaskSignal {
  readonly aborted: boolean
  once(event: 'abort', listener: () => void): void
  off(event: 'abort', listener: () => void): void
}

/** One task's deadline: expired by the watchdog unless finished first. */
export class Deadline implements TaskSignal {
  aborted = false
  finished = false
  private listener: (() => void) | null = null

  constructor(readonly due: number) {}

  once(_event: 'abort', listener: () => void): void {
    this.listener = listener
  }

  off(_event: 'abort', _listener: () => void): void {
    this.listener = null
  }

  /** What piscina calls instead of `off` at run time (its EventEmitter path). */
  removeListener(event: 'abort', listener: () => void): void {
    this.off(event, listener)
  }

  expire(): void {
    if (this.finished || this.aborted) return
    this.aborted = true
    const listener = this.listener
    this.listener = null
    listener?.()
  }
}

/**
 * Deadlines for every task of a pool on one timer, instead of an AbortSignal.timeout per task
 * (a timer, a signal and a weak reference for each). All tasks share one timeout and start in
 * order, so their deadlines come in order too: the timer waits for the earliest one still
 * running, and finished tasks leave the front of the line as they finish.
 */
export class Watchdog {
  private line: Deadline[] = []
  private head = 0
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(): Deadline {
    const deadline = new Deadline(this.now() + this.timeoutMs)
    this.line.push(deadline)
    if (this.timer === null) this.arm(this.timeoutMs)
    return deadline
  }

  finish(deadline: Deadline): void {
    deadline.finished = true
    this.dropFinished()
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.check, Math.max(1, Math.ceil(ms)))
    this.timer.unref()
  }

  private readonly check = (): void => {
    this.timer = null
    const now = this.now()
    while (this.head < this.line.length && this.line[this.head]!.due <= now) {
      this.line[this.head++]!.expire()
    }
    this.dropFinished()
    if (this.head < this.line.length) this.arm(this.line[this.head]!.due - now)
  }

  private dropFinished(): void {
    while (this.head < this.line.length && this.line[this.head]!.finished) this.head++
    if (this.head === this.line.length) {
      this.line = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.line.length) {
      this.line = this.line.slice(this.head)
      this.head = 0
    }
  }
}
