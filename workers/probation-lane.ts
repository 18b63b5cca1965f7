/**
 * The bodies of clients on probation for refused work (gateway/refused-work.ts): run one at a time,
 * apart from everyone else's, the clients taken in turn (round robin), so one client's queue of
 * costly bodies never waits ahead of another's. The pool runs them on a thread of their own
 * (workers/pool.ts), so none of them takes a worker, or the event loop, from clients in good standing.
 */
export class ProbationLane<T> {
  /** Each client's bodies in order; a Map iterates in insertion order, so its first key is next. */
  private readonly queues = new Map<string, T[]>()
  private queued = 0
  private running = false

  /** `run` decodes one item and answers it; it never rejects. */
  constructor(private readonly run: (item: T) => Promise<void>) {}

  push(client: string, item: T): void {
    const queue = this.queues.get(client)
    if (queue === undefined) this.queues.set(client, [item])
    else queue.push(item)
    this.queued++
    if (!this.running) void this.drain()
  }

  /** Items waiting (not the one running). */
  get size(): number {
    return this.queued
  }

  private async drain(): Promise<void> {
    this.running = true
    for (let next = this.queues.entries().next(); !next.done; next = this.queues.entries().next()) {
      const [client, queue] = next.value
      const item = queue.shift()!
      this.queued--
      // The client goes to the back of the line: every other client's next item runs first.
      this.queues.delete(client)
      if (queue.length > 0) this.queues.set(client, queue)
      await this.run(item)
    }
    this.running = false
  }
}
