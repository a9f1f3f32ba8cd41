// The client's address, for per-address limits. Headers that carry it are
// set by a proxy in front, but a client can send them too: they are read only
// when TRUST_PROXY says such a proxy is there, never by default.
//   false  the TCP peer (a bare host)
//   fly    Fly-Client-IP, which Fly.io's proxy sets to the address it
//          accepted the connection from (a client's own value is replaced)
//   N      N proxies in front, each appending to X-Forwarded-For: the Nth
//          address from the right, counting the TCP peer as the last one
// No Fastify here.
import { isIP } from 'node:net'
import { normalizeIP } from '@fastify/rate-limit'

export type TrustProxy = false | 'fly' | number

/** Accepted TRUST_PROXY values: false, fly, or 1–99 proxies. */
export const TRUST_PROXY_PATTERN = '^(false|fly|[1-9][0-9]?)$'

export function parseTrustProxy (raw: string): TrustProxy {
  if (raw === 'false') return false
  if (raw === 'fly') return 'fly'
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new Error(`TRUST_PROXY must be false, fly or a number of proxies, not ${raw}`)
  return n
}

export interface RequestLike {
  /** The TCP peer's address. */
  ip: string
  headers: Record<string, string | string[] | undefined>
}

function header (req: RequestLike, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

/** The client's address as TRUST_PROXY says to find it, with IPv6 grouped by /64 (one host's range). */
export function clientAddress (trust: TrustProxy, req: RequestLike): string {
  let address = req.ip
  if (trust === 'fly') {
    const fly = header(req, 'fly-client-ip')?.trim()
    if (fly !== undefined && isIP(fly) !== 0) address = fly
  } else if (typeof trust === 'number') {
    const hops = (header(req, 'x-forwarded-for') ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '')
    hops.push(req.ip)
    const picked = hops[Math.max(0, hops.length - 1 - trust)]
    if (isIP(picked) !== 0) address = picked
  }
  return normalizeIP(address)
}
