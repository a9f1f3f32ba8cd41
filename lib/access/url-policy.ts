// Which Foundry URLs a client may send, and which addresses the session's
// browser may reach. Three modes (FOUNDRY_URL_POLICY):
//   default      refuses link-local, cloud metadata, multicast and reserved
//                addresses; loopback and private networks are allowed (a
//                Foundry next to the service, tests)
//   public-only  for hosted instances: public unicast addresses only
//   any          no address check (http/https and no credentials still apply)
// A host name is resolved (every address) and each address must pass: a name
// that resolves to one refused address is refused. No Fastify here.
//
// In the browser (wired in plugins/sessions.ts through lib/browser/page-setup.ts):
// `allowRequest` runs on every request the session's page makes (navigations,
// each redirect hop, subresources, fetch/XHR), resolving the host with Node;
// `allowAddress` runs on every response, on the address Chromium actually
// connected to, because Chromium resolves names itself (DNS rebinding): at
// the first refused one the page is closed and its later requests failed.
// Limits: that request has already been sent (blind, unreadable), as have the
// hops of a redirect chain; WebSocket handshakes and service/shared workers
// are not intercepted by the page's Fetch domain; DNS prefetch still resolves
// names. Routing Chromium through an in-process proxy that connects to the
// checked address would close these; it is not done.
import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { InvalidFoundryUrl } from '../errors.js'

export const URL_POLICY_MODES = ['default', 'public-only', 'any'] as const
export type UrlPolicyMode = typeof URL_POLICY_MODES[number]

/** Every address a host name resolves to (IPv4 and IPv6). Tests inject their own. */
export type Resolver = (hostname: string) => Promise<string[]>

export type AddressKind =
  'public' | 'loopback' | 'private' | 'unspecified' | 'link-local' | 'metadata' | 'multicast' | 'reserved'

export interface UrlPolicyOptions {
  mode: UrlPolicyMode
  resolve?: Resolver
  /** Bound on one resolution, ms (default 5000). */
  resolveTimeoutMs?: number
  /** How long a resolution is reused (header check and browser guard), ms (default 10 000; 0 = never). */
  cacheMs?: number
  now?: () => number
}

export interface UrlPolicy {
  readonly mode: UrlPolicyMode
  /** Parse and check x-foundry-url, resolving its host; throws INVALID_FOUNDRY_URL with the reason. */
  check: (raw: string) => Promise<URL>
  /** For the session's browser: may a request to this URL go out? Never throws. */
  allowRequest: (url: URL) => Promise<boolean>
  /** For the session's browser: may it talk to this address (the one Chromium actually connected to)? */
  allowAddress: (ip: string) => boolean
}

const METADATA_HOSTS = new Set([
  'metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal',
  'metadata.azure.internal'
])

function block (entries: Array<[string, number] | string>): BlockList {
  const list = new BlockList()
  for (const e of entries) {
    const [addr, prefix] = typeof e === 'string' ? [e, -1] : e
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4'
    if (prefix < 0) list.addAddress(addr, family)
    else list.addSubnet(addr, prefix, family)
  }
  return list
}

// Checked in this order; the first match wins.
const KINDS: Array<[AddressKind, BlockList]> = [
  ['metadata', block([
    '169.254.169.254', '169.254.170.2', '169.254.169.253', // AWS/GCP/Azure/OpenStack IMDS, ECS task metadata, AWS DNS
    '100.100.100.200', // Alibaba Cloud
    '168.63.129.16', // Azure host endpoint
    'fd00:ec2::254', 'fd00:ec2::23' // AWS IMDS and DNS over IPv6
  ])],
  ['link-local', block([['169.254.0.0', 16], ['fe80::', 10]])],
  ['loopback', block([['127.0.0.0', 8], '::1'])],
  ['unspecified', block([['0.0.0.0', 8], '::'])],
  ['private', block([
    ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['198.18.0.0', 15],
    ['192.0.0.0', 24], ['fc00::', 7], ['fec0::', 10]
  ])],
  ['multicast', block([['224.0.0.0', 4], ['ff00::', 8]])],
  ['reserved', block([
    ['240.0.0.0', 4], ['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24],
    ['2001:db8::', 32], ['100::', 64]
  ])]
]

/** An IPv4 address carried inside an IPv6 one (mapped, NAT64, compatible), or null. */
function embeddedIPv4 (ip: string): string | null {
  const m = /^(?:::ffff:|64:ff9b::|::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (m !== null) return m[1]
  const h = /^(::ffff:|64:ff9b::|::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip)
  if (h === null) return null
  const hi = parseInt(h[2], 16)
  const lo = parseInt(h[3], 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/** What kind of address this is. Input: an IP literal, with or without [brackets]. */
const classified = new Map<string, AddressKind>()

/**
 * The kind of an address. Memoised (a BlockList check builds a SocketAddress
 * per call, and every handshake and browser request asks): addresses are few.
 */
export function classifyAddress (raw: string): AddressKind {
  let kind = classified.get(raw)
  if (kind === undefined) {
    kind = classify(raw)
    if (classified.size >= 4096) classified.clear()
    classified.set(raw, kind)
  }
  return kind
}

function classify (raw: string): AddressKind {
  const ip = raw.replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase()
  const family = isIP(ip)
  if (family === 0) return 'reserved'
  if (family === 6) {
    const v4 = embeddedIPv4(ip)
    if (v4 !== null && isIP(v4) === 4) return classifyAddress(v4)
  }
  const type = family === 6 ? 'ipv6' : 'ipv4'
  for (const [kind, list] of KINDS) if (list.check(ip, type)) return kind
  return 'public'
}

/** Whether `mode` lets the service's browser reach an address of this kind. */
export function kindAllowed (kind: AddressKind, mode: UrlPolicyMode): boolean {
  if (mode === 'any') return true
  if (mode === 'public-only') return kind === 'public'
  return kind === 'public' || kind === 'loopback' || kind === 'private' || kind === 'unspecified'
}

const REFUSAL: Record<UrlPolicyMode, string> = {
  default: 'this service refuses link-local, cloud metadata, multicast and reserved addresses',
  'public-only': 'this service (FOUNDRY_URL_POLICY=public-only) only reaches public internet addresses, not private, loopback or link-local ones',
  any: ''
}

/** Host of a URL as a bare name or IP literal, without IPv6 brackets or a trailing dot. */
function bareHost (url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase()
}

async function systemResolve (hostname: string): Promise<string[]> {
  const all = await lookup(hostname, { all: true, verbatim: true })
  return all.map((a) => a.address)
}

class ResolveFailed extends Error {}

export function createUrlPolicy (opts: UrlPolicyOptions): UrlPolicy {
  const { mode } = opts
  const resolveRaw = opts.resolve ?? systemResolve
  const timeoutMs = opts.resolveTimeoutMs ?? 5000
  const cacheMs = opts.cacheMs ?? 10_000
  const now = opts.now ?? Date.now
  const cache = new Map<string, { addresses: string[], until: number }>()

  async function resolve (host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host]
    let timer: NodeJS.Timeout | undefined
    try {
      const addresses = await Promise.race([
        resolveRaw(host),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new ResolveFailed('timeout')) }, timeoutMs)
        })
      ])
      if (addresses.length === 0) throw new ResolveFailed('no address')
      return addresses
    } catch (err) {
      throw err instanceof ResolveFailed ? err : new ResolveFailed((err as Error).message)
    } finally {
      clearTimeout(timer)
    }
  }

  const inflight = new Map<string, Promise<string[]>>()

  /** Resolutions are reused for cacheMs, and shared while in flight (a flood of one name is one lookup). */
  async function resolveCached (host: string): Promise<string[]> {
    if (cacheMs <= 0 || isIP(host) !== 0) return await resolve(host)
    const t = now()
    const hit = cache.get(host)
    if (hit !== undefined && hit.until > t) return hit.addresses
    let pending = inflight.get(host)
    if (pending === undefined) {
      pending = resolve(host).finally(() => { inflight.delete(host) })
      inflight.set(host, pending)
    }
    const addresses = await pending
    cache.delete(host)
    if (cache.size >= 256) cache.delete(cache.keys().next().value as string)
    cache.set(host, { addresses, until: t + cacheMs })
    return addresses
  }

  function allowAddress (ip: string): boolean {
    return kindAllowed(classifyAddress(ip), mode)
  }

  return {
    mode,

    async check (raw) {
      let url: URL
      try {
        url = new URL(raw.trim())
      } catch {
        throw new InvalidFoundryUrl('is not a URL: send the address you open Foundry at, e.g. https://foundry.example.com/')
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new InvalidFoundryUrl(`must be an http:// or https:// URL, not ${url.protocol}`)
      }
      if (url.username !== '' || url.password !== '') {
        throw new InvalidFoundryUrl('must not carry credentials (user:password@): send the Foundry password through the handshake')
      }
      const host = bareHost(url)
      if (host === '') throw new InvalidFoundryUrl('has no host')
      if (mode === 'any') return url
      if (METADATA_HOSTS.has(host)) {
        throw new InvalidFoundryUrl(`points at a cloud metadata service: ${REFUSAL[mode]}`)
      }
      let addresses: string[]
      try {
        addresses = await resolveCached(host)
      } catch {
        throw new InvalidFoundryUrl(`names a host (${host}) this service cannot resolve: check the name, or send the server's IP address`)
      }
      for (const address of addresses) {
        const kind = classifyAddress(address)
        if (!kindAllowed(kind, mode)) {
          const what = isIP(host) !== 0 ? `a ${kind} address` : `a host that resolves to a ${kind} address`
          throw new InvalidFoundryUrl(`points at ${what}: ${REFUSAL[mode]}`)
        }
      }
      return url
    },

    async allowRequest (url) {
      switch (url.protocol) {
        // No network: page-internal documents and resources.
        case 'data:':
        case 'blob:':
        case 'about:':
          return true
        case 'http:':
        case 'https:':
        case 'ws:':
        case 'wss:':
          break
        default:
          return false
      }
      if (mode === 'any') return true
      const host = bareHost(url)
      if (host === '' || METADATA_HOSTS.has(host)) return false
      try {
        return (await resolveCached(host)).every(allowAddress)
      } catch {
        return false // fail closed: Chromium would not reach it either, or resolves it its own way
      }
    },

    allowAddress
  }
}
