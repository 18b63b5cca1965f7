import type { TopicPartition } from './store.js'

/** A count per topic-partition (batches held, batches in flight), forgetting a partition at zero. */
export class PartitionCounts {
  private readonly counts = new Map<string, number>()
  /** Each partition's key, made once: a key built per call is hashed per call (the delivery asks per batch). */
  private readonly keys = new Map<string, string[]>()

  add(topic: string, partition: number, by: number): void {
    const key = this.key(topic, partition)
    const n = (this.counts.get(key) ?? 0) + by
    if (n > 0) this.counts.set(key, n)
    else this.counts.delete(key)
  }

  has(topic: string, partition: number): boolean {
    return this.counts.has(this.key(topic, partition))
  }

  private key(topic: string, partition: number): string {
    let byPartition = this.keys.get(topic)
    if (byPartition === undefined) {
      byPartition = []
      this.keys.set(topic, byPartition)
    }
    byPartition[partition] ??= `${topic}\u0000${partition}`
    return byPartition[partition]
  }

  /** The partitions with a count above zero. */
  partitions(): TopicPartition[] {
    return [...this.counts.keys()].map((key) => {
      const at = key.lastIndexOf('\u0000')
      return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) }
    })
  }

  clear(): void {
    this.counts.clear()
  }
}
