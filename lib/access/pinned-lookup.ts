// A socket `lookup` pinned to addresses the URL policy already resolved and
// checked: whatever name it is asked for, it answers with those addresses
// and never resolves again, so a name that changes its answer between the
// check and the connection (DNS rebinding) has no window. The request keeps
// its URL (host name included), so the Host header and the TLS server name
// (SNI) stay the name's. Used by the egress gate, the HTTP probe of Foundry
// and webhook delivery. No Fastify here.
import { isIP, type LookupFunction } from 'node:net'

export function pinnedLookup (addresses: readonly string[]): LookupFunction {
  const entries = addresses.map((a) => {
    const address = a.replace(/^\[|\]$/g, '')
    return { address, family: isIP(address) }
  })
  if (entries.length === 0 || entries.some((e) => e.family === 0)) throw new TypeError('pinnedLookup needs IP addresses')
  const first = entries[0]!
  return ((_host: string, options: { all?: boolean } | ((...args: unknown[]) => void), callback?: (...args: unknown[]) => void) => {
    if (typeof options === 'function') { callback = options; options = {} }
    if (options?.all === true) callback!(null, entries.map((e) => ({ ...e })))
    else callback!(null, first.address, first.family)
  }) as unknown as LookupFunction
}
