import { describe, expect, it } from 'vitest'
import { median, percentile, slope } from '../../bench/lib/stats.js'

describe('bench statistics', () => {
  it('median: the middle value, the mean of the middle two, NaN for none; input left unsorted', () => {
    const odd = [5, 1, 3]
    expect(median(odd)).toBe(3)
    expect(odd).toEqual([5, 1, 3])
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([])).toBeNaN()
  })

  it('percentile: nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(percentile(xs, 0.5)).toBe(50)
    expect(percentile(xs, 0.99)).toBe(99)
    expect(percentile(xs, 1)).toBe(100)
    expect(percentile(xs, 0)).toBe(1)
    expect(percentile([], 0.5)).toBeNaN()
  })

  it('slope: least squares, 0 without spread', () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2)
    expect(slope([1, 1], [0, 5])).toBe(0)
    expect(slope([1], [1])).toBe(0)
  })
})
