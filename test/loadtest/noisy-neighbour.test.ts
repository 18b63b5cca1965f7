// Issue 15, the noisy neighbour: while one client posts the worst bodies it can build for each
// decoder, valid traffic from another client on the same gateway keeps its throughput and gets no
// 5xx. Exact figures: `npm run loadtest -- noisy-neighbour` (loadtest/results/noisy-neighbour.json);
// here the throughput bound is loose, as this machine is shared. Runs the compiled neighbour
// (dist/loadtest/noisy-client.js).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { NOISY_NEIGHBOUR_KEYS, noisyNeighbour } from '../../loadtest/noisy-neighbour.js'
import { type RunningGateway, startGateway } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')

describe.skipIf(brokers.length === 0)('noisy neighbour', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway(brokers, { ADGATE_WORKERS: '1', ADGATE_API_KEYS: NOISY_NEIGHBOUR_KEYS })
  })
  afterAll(async () => {
    expect(await gw.stop()).toBe(0)
  })

  it('valid traffic keeps most of its throughput and gets no 5xx beside the worst bodies', {
    timeout: 120_000,
  }, async () => {
    const r = await noisyNeighbour(gw.url, 4, 3)
    expect(r.valid_non2xx).toEqual({})
    // Loose: on the shared 2 cores single rounds spread 0.55-1.46 with other work running; before the
    // per-client charge for refused work the ratio was 0.13-0.24.
    expect(r.ratio, JSON.stringify(r.rounds)).toBeGreaterThan(0.4)
    // Every hostile body was answered, each with a 4xx (refused or made to wait, never a 5xx or a
    // dropped connection), and the neighbour was slowed to a few bodies a second.
    const kinds = Object.entries(r.neighbour)
    expect(kinds.length).toBe(5)
    for (const [name, statuses] of kinds)
      for (const status of Object.keys(statuses)) expect(status, name).toMatch(/^4\d\d$/)
  })
})
