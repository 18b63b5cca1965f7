// gateway/client-address.ts: the client's address as the gateway may believe it. X-Forwarded-For
// counts only from a trusted proxy (ADGATE_TRUSTED_PROXIES), read from the right; X-Adgate-Peer
// only from the strict-HTTP guard. Keyless clients behind one proxy are then told apart (issue 15).
import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { describe, expect, it } from 'vitest'
import { ClientAddress } from '../../gateway/client-address.js'

function request(socket: string, headers: [string, string][]) {
  const res = {
    getRemoteAddressAsText: () => new TextEncoder().encode(socket).buffer,
  } as unknown as HttpResponse
  const req = {
    getHeader: (name: string) => headers.find(([n]) => n === name)?.[1] ?? '',
    forEach: (cb: (name: string, value: string) => void) => {
      for (const [n, v] of headers) cb(n, v)
    },
  } as unknown as HttpRequest
  return [res, req] as const
}

describe('ClientAddress', () => {
  const proxies = new ClientAddress(['10.0.0.0/8', '::1'], false)

  it('without trusted proxies, X-Forwarded-For is ignored: anyone may send it', () => {
    const address = new ClientAddress([], false)
    expect(address.of(...request('203.0.113.7', [['x-forwarded-for', '198.51.100.1']]))).toBe('203.0.113.7')
  })

  it('from a trusted proxy, the client is the last forwarded address that is not a proxy', () => {
    expect(proxies.of(...request('10.1.1.1', [['x-forwarded-for', '198.51.100.1']]))).toBe('198.51.100.1')
    // The client wrote the leftmost entry itself; the chain of proxies is skipped from the right.
    expect(proxies.of(...request('10.1.1.1', [['x-forwarded-for', 'spoofed, 198.51.100.2, 10.2.2.2']]))).toBe(
      '198.51.100.2',
    )
    // Repeated header lines are one list, in order (RFC 9110 §5.3).
    expect(
      proxies.of(
        ...request('::1', [
          ['x-forwarded-for', '198.51.100.3'],
          ['x-forwarded-for', '10.3.3.3'],
        ]),
      ),
    ).toBe('198.51.100.3')
  })

  it('from an address that is not a trusted proxy, X-Forwarded-For is ignored', () => {
    expect(proxies.of(...request('203.0.113.9', [['x-forwarded-for', '198.51.100.1']]))).toBe('203.0.113.9')
  })

  it('a proxy that forwards nothing but proxies is the client as far as is known', () => {
    expect(proxies.of(...request('10.1.1.1', []))).toBe('10.1.1.1')
    expect(proxies.of(...request('10.1.1.1', [['x-forwarded-for', '10.9.9.9, ']]))).toBe('10.1.1.1')
  })

  it("X-Adgate-Peer is the guard's word only: without the guard a client's own is ignored", () => {
    const peer: [string, string][] = [['x-adgate-peer', '198.51.100.4']]
    expect(new ClientAddress([], false).of(...request('203.0.113.7', peer))).toBe('203.0.113.7')
    expect(new ClientAddress([], true).of(...request('127.0.0.1', peer))).toBe('198.51.100.4')
    // Behind the guard, the guard's peer is the one checked against the trusted proxies.
    expect(
      new ClientAddress(['10.0.0.0/8'], true).of(
        ...request('127.0.0.1', [
          ...peer.map(() => ['x-adgate-peer', '10.0.0.5'] as [string, string]),
          ['x-forwarded-for', '198.51.100.5'],
        ]),
      ),
    ).toBe('198.51.100.5')
  })
})
