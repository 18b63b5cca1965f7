import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { BlockList, isIPv6 } from 'node:net'

/**
 * The address a request came from, as far as the gateway can believe it (trackers record it;
 * keyless clients are charged refused work by it, refused-work.ts).
 * - The peer: behind the strict-HTTP guard, the address the guard saw (its X-Adgate-Peer; it drops
 *   a client's own); without the guard, the socket's, and an X-Adgate-Peer header means nothing.
 * - From a trusted proxy (ADGATE_TRUSTED_PROXIES), X-Forwarded-For read from the right: each proxy
 *   appends the address it got the request from, so the first address that is not a trusted proxy
 *   is the client; what lies left of it was written by the client and may be anything. Without
 *   trusted proxies, X-Forwarded-For is ignored, as anyone may send it (the same rule as nginx's
 *   real_ip with set_real_ip_from, and express's "trust proxy").
 */
export class ClientAddress {
  private readonly trusted: BlockList | null

  constructor(
    trustedProxies: readonly string[],
    private readonly guarded: boolean,
  ) {
    this.trusted = trustedProxies.length === 0 ? null : blockList(trustedProxies)
  }

  /** Reads req now (uWS: it dies when the handler returns). */
  of(res: HttpResponse, req: HttpRequest): string {
    const peer =
      (this.guarded && req.getHeader('x-adgate-peer')) || Buffer.from(res.getRemoteAddressAsText()).toString()
    if (this.trusted === null || !this.isTrusted(peer)) return peer
    // Every X-Forwarded-For line, in order (RFC 9110 §5.3: repeated lines are one comma list).
    let forwarded = ''
    req.forEach((name, value) => {
      if (name === 'x-forwarded-for') forwarded = forwarded === '' ? value : `${forwarded},${value}`
    })
    const hops = forwarded.split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim()
      if (hop === '') continue
      if (!this.isTrusted(hop)) return hop
    }
    return peer // only proxies (or nothing) in the list: the nearest is all that is known
  }

  private isTrusted(address: string): boolean {
    // Text that is no address at all (a client's X-Forwarded-For) is not in the list.
    return this.trusted!.check(address, isIPv6(address) ? 'ipv6' : 'ipv4')
  }
}

function blockList(ranges: readonly string[]): BlockList {
  const list = new BlockList()
  for (const range of ranges) {
    const [address = '', prefix] = range.split('/')
    const family = isIPv6(address) ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(prefix), family)
  }
  return list
}
