import { describe, expect, it } from 'vitest'
import { type BenchResult, mergeResults, resultProblems } from '../../bench/lib/results.js'

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

describe('mergeResults', () => {
  const machine = { cpus: 2, model: 'm' }
  const earlier = { commit: 'aaa1111', date: '2026-12-01T00:00:00.000Z' }
  const now = { commit: 'bbb2222', date: '2026-12-06T18:00:00.000Z', machine }
  const fig = (c: string, value: number, part?: string): BenchResult => ({
    case: c,
    metric: 'events/s',
    value,
    unit: 'events/s',
    ...(part === undefined ? {} : { part }),
  })

  it('stamps every figure of a first run with its commit and date, to four significant digits', () => {
    const file = mergeResults(null, 'b', [fig('x', 123456.7)], now)
    expect(file).toEqual({
      name: 'b',
      commit: 'bbb2222',
      date: now.date,
      machine,
      results: [{ ...fig('x', 123500), commit: 'bbb2222', date: now.date }],
    })
  })

  it('keeps the parts that did not run, with the commit and date they were measured on', () => {
    const before = {
      ...earlier,
      results: [
        { ...fig('throughput: 190557 events', 1, 'throughput'), ...earlier },
        { ...fig('streams: round 2 did not finish', 0, 'streams'), ...earlier },
        { ...fig('streams: join workload', 2, 'streams'), ...earlier },
        { ...fig('lag', 3, 'lag'), commit: 'ccc3333', date: '2026-12-03T00:00:00.000Z' },
      ],
    }
    const after = mergeResults(before, 'b', [fig('streams: join workload', 20, 'streams')], now)
    expect(after.commit).toBe('bbb2222')
    // The part that ran loses every old entry (the failed round too), in its old place.
    expect(after.results).toEqual([
      before.results[0],
      { ...fig('streams: join workload', 20, 'streams'), commit: 'bbb2222', date: now.date },
      before.results[3],
    ])
  })

  it('dates entries written before entries had dates', () => {
    const before = { ...earlier, results: [fig('a', 1, 'a'), fig('b', 2, 'b')] }
    const after = mergeResults(before, 'b', [fig('b', 20, 'b')], now)
    expect(after.results).toEqual([
      { ...fig('a', 1, 'a'), ...earlier },
      { ...fig('b', 20, 'b'), commit: 'bbb2222', date: now.date },
    ])
  })

  it('a run without parts is the whole bench: it replaces the file (peers.json kept the old rates beside the new)', () => {
    const before = { ...earlier, results: [fig('adgate at 22100 events/s', 1), fig('saturation', 2)] }
    const after = mergeResults(before, 'b', [fig('adgate at 22200 events/s', 10), fig('saturation', 20)], now)
    expect(after.results).toEqual([
      { ...fig('adgate at 22200 events/s', 10), commit: 'bbb2222', date: now.date },
      { ...fig('saturation', 20), commit: 'bbb2222', date: now.date },
    ])
  })
})
