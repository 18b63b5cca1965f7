import { describe, expect, it } from 'vitest'
import { PartitionCounts } from '../../spool/partition-counts.js'

describe('PartitionCounts', () => {
  it('counts per topic-partition, forgets a partition at zero, lists them in the order they were first counted', () => {
    const c = new PartitionCounts()
    c.add('adgate.clicks', 3, 2)
    c.add('adgate.bids', 0, 1)
    c.add('adgate.clicks', 1, 1)
    // Topics that one another's names begin with, and partition numbers that run together in text.
    c.add('adgate.clicks1', 1, 1)
    expect(c.has('adgate.clicks', 3)).toBe(true)
    expect(c.has('adgate.clicks', 13)).toBe(false)
    expect(c.has('adgate.clicks1', 1)).toBe(true)
    c.add('adgate.clicks', 3, -1)
    expect(c.has('adgate.clicks', 3)).toBe(true)
    c.add('adgate.clicks', 3, -1)
    expect(c.has('adgate.clicks', 3)).toBe(false)
    c.add('adgate.clicks', 3, 1) // counted again: last in the list
    expect(c.partitions()).toEqual([
      { topic: 'adgate.bids', partition: 0 },
      { topic: 'adgate.clicks', partition: 1 },
      { topic: 'adgate.clicks1', partition: 1 },
      { topic: 'adgate.clicks', partition: 3 },
    ])
    c.clear()
    expect(c.partitions()).toEqual([])
    expect(c.has('adgate.bids', 0)).toBe(false)
  })
})
