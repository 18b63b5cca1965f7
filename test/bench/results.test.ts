import { describe, expect, it } from 'vitest'
import { type BenchResult, resultProblems } from '../../bench/lib/results.js'

const rate = (value: number, extra: Partial<BenchResult> = {}): BenchResult => ({
  case: 'c',
  metric: 'events/s',
  value,
  unit: 'events/s/core',
  ...extra,
})

describe('resultProblems', () => {
  it('passes finite figures, and a count or share of zero', () => {
    expect(
      resultProblems([
        rate(1000, { baseline: 800, ratio: 1.25 }),
        { case: 'clean traffic', metric: 'flags', value: 0, unit: 'flags' },
        { case: 'rule cost', metric: 'rule cost', value: -0.3, unit: '% of decode throughput' },
        { case: 'c', metric: 'recall', value: 0, unit: 'share' },
      ]),
    ).toEqual([])
  })

  it('refuses no figures at all', () => {
    expect(resultProblems([])).toEqual(['no results'])
  })

  it('refuses a value, baseline or ratio that is not a finite number', () => {
    expect(resultProblems([rate(Number.NaN)])).toHaveLength(1)
    expect(resultProblems([rate(5, { baseline: Number.NaN, ratio: Number.NaN })])).toHaveLength(2)
    expect(resultProblems([rate(5, { ratio: Number.POSITIVE_INFINITY })])).toHaveLength(1)
    expect(
      resultProblems([{ case: 'c', metric: 'recovery time', value: Number.NaN, unit: 'ms' }]),
    ).toHaveLength(1)
  })

  it('refuses a rate or a CPU cost of zero', () => {
    for (const unit of [
      'events/s',
      'events/s/core',
      'events/CPU-s',
      'MB/s/core',
      'CPU-s per 10^6 events',
      'µs',
    ])
      expect(resultProblems([{ case: 'c', metric: 'm', value: 0, unit }]), unit).toHaveLength(1)
  })
})
