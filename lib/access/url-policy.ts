// Which Foundry URLs a client may send, and which addresses the session's
// browser may reach. Three modes (FOUNDRY_URL_POLICY):
//   default      refuses link-local, cloud metadata, multicast and reserved
//                addresses; loopback and private networks are allowed (a
//                Foundry next to the service, tests)
//   public-only  for hosted instances: public unicast addresses only
//   any          no address check by kind (http/https and no credentials still apply)
// and two operator lists on top of the mode:
//   FOUNDRY_URL_DENY   addresses and CIDR ranges always refused (whatever the mode, allow list included)
//   FOUNDRY_URL_ALLOW  addresses and CIDR ranges allowed although the mode refuses them
//                      (a private Foundry next to a public-only instance)
// A host name is resolved (every address) and each address must pass: a name
// that resolves to one refused address is refused. No Fastify here.
//
// Where it is applied: `check` on x-foundry-url (the handshake), and the
// egress gate (lib/browser/egress.ts) on every connection the session
// browser makes, redirects and page scripts included: the gate resolves the
// name once with `resolveChecked` and connects to exactly the address that
// passed. `checkUrl` and `addressVerdict` are the same rules for any other
// outgoing URL (webhooks).
import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { InvalidFoundryUrl } from '../errors.ts'

export const URL_POLICY_MODES = ['default', 'public-only', 'any'] as const
export type UrlPolicyMode = typeof URL_POLICY_MODES[number]

/** Every address a host name resolves to (IPv4 and IPv6). Tests inject their own. */
export type Resolver = (hostname: string) => Promise<string[]>

export type AddressKind =
  'public' | 'loopback' | 'private' | 'unspecified' | 'link-local' | 'metadata' | 'multicast' | 'reserved'

/** A parsed FOUNDRY_URL_ALLOW / FOUNDRY_URL_DENY: addresses and CIDR ranges. */
export interface AddressList {
  /** The entries as written (normalised), for messages and logs. */
  readonly entries: readonly string[]
  has: (ip: string) => boolean
}

/** Why the policy refused an address or URL: a stable word (metrics label, event field). */
export type RefusalReason =
  | 'deny-list' // FOUNDRY_URL_DENY
  | `policy-${Exclude<AddressKind, 'public'>}` // the mode refuses this kind of address
  | 'metadata-host' // a cloud metadata service's host name
  | 'unresolvable' // the name does not resolve (or not in time)
  | 'bad-url' // not an http(s)/ws(s) URL, credentials, no host

export type Verdict =
  | { ok: true, addresses: string[] }
  | { ok: false, reason: RefusalReason, address?: string | undefined }

export interface UrlPolicyOptions {
  mode: UrlPolicyMode
  /** FOUNDRY_URL_ALLOW: allowed although the mode refuses them. */
  allow?: AddressList
  /** FOUNDRY_URL_DENY: always refused. */
  deny?: AddressList
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
  /**
   * Any outgoing http(s)/ws(s) URL (a webhook, a relay probe): its host
   * resolved once, every address under mode + lists. Never throws; on ok the
   * addresses are the ones to connect to (connect to one of them, do not
   * resolve again).
   */
  checkUrl: (url: URL | string) => Promise<Verdict>
  /** A host name or IP literal resolved once and checked: what the egress gate connects to. Never throws. */
  resolveChecked: (host: string) => Promise<Verdict>
  /** One address under mode + lists. */
  addressVerdict: (ip: string) => { ok: true } | { ok: false, reason: RefusalReason }
  /** addressVerdict(ip).ok */
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
  return bareName(url.hostname)
}

function bareName (host: string): string {
  return host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase()
}

/** An address as checked against the lists: zone dropped, IPv4 taken out of IPv6 forms that carry one. */
function listForm (raw: string): { ip: string, family: 'ipv4' | 'ipv6' } | null {
  const ip = raw.replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase()
  const family = isIP(ip)
  if (family === 0) return null
  if (family === 6) {
    const v4 = embeddedIPv4(ip)
    if (v4 !== null && isIP(v4) === 4) return { ip: v4, family: 'ipv4' }
  }
  return { ip, family: family === 6 ? 'ipv6' : 'ipv4' }
}

export class AddressListError extends Error {}

/**
 * Parse an operator list (FOUNDRY_URL_ALLOW, FOUNDRY_URL_DENY): addresses and
 * CIDR ranges, IPv4 or IPv6, separated by commas or spaces. A bad entry
 * throws AddressListError naming it (start-up stops with the reason).
 */
export function parseAddressList (name: string, raw: string): AddressList {
  const list = new BlockList()
  const entries: string[] = []
  for (const word of raw.split(/[\s,]+/)) {
    if (word === '') continue
    const slash = word.indexOf('/')
    const addr = (slash < 0 ? word : word.slice(0, slash)).replace(/^\[|\]$/g, '')
    const family = isIP(addr)
    const prefixText = slash < 0 ? '' : word.slice(slash + 1)
    const max = family === 6 ? 128 : 32
    if (family === 0) throw new AddressListError(`${name}: "${word}" is not an IP address or CIDR range (e.g. 10.0.0.0/8, 203.0.113.7, fd00::/8)`)
    if (slash >= 0 && (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max)) {
      throw new AddressListError(`${name}: "${word}" has a bad prefix length (0–${max} for IPv${family})`)
    }
    const type = family === 6 ? 'ipv6' : 'ipv4'
    if (slash < 0) list.addAddress(addr, type)
    else list.addSubnet(addr, Number(prefixText), type)
    entries.push(word.toLowerCase())
  }
  return {
    entries,
    has (ip) {
      if (entries.length === 0) return false
      const f = listForm(ip)
      return f !== null && list.check(f.ip, f.family)
    }
  }
}

const EMPTY_LIST: AddressList = { entries: [], has: () => false }

async function systemResolve (hostname: string): Promise<string[]> {
  const all = await lookup(hostname, { all: true, verbatim: true })
  return all.map((a) => a.address)
}

class ResolveFailed extends Error {}

/** The protocols an outgoing URL may have; page-internal ones never reach the network. */
const NETWORK_PROTOCOLS = new Set(['http:', 'https:', 'ws:', 'wss:'])

export function createUrlPolicy (opts: UrlPolicyOptions): UrlPolicy {
  const { mode } = opts
  const allow = opts.allow ?? EMPTY_LIST
  const deny = opts.deny ?? EMPTY_LIST
  const resolveRaw = opts.resolve ?? systemResolve
  const timeoutMs = opts.resolveTimeoutMs ?? 5000
  const cacheMs = opts.cacheMs ?? 10_000
  const now = opts.now ?? Date.now
  const cache = new Map<string, { addresses: string[], until: number }>()
  /** With mode any and no deny list, addresses are never looked at. */
  const unchecked = mode === 'any' && deny.entries.length === 0

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

  function addressVerdict (ip: string): { ok: true } | { ok: false, reason: RefusalReason } {
    if (deny.has(ip)) return { ok: false, reason: 'deny-list' }
    const kind = classifyAddress(ip)
    if (kindAllowed(kind, mode) || allow.has(ip)) return { ok: true }
    return { ok: false, reason: `policy-${kind as Exclude<AddressKind, 'public'>}` }
  }

  async function resolveChecked (rawHost: string): Promise<Verdict> {
    const host = bareName(rawHost)
    if (host === '') return { ok: false, reason: 'bad-url' }
    if (unchecked) {
      try { return { ok: true, addresses: await resolveCached(host) } } catch { return { ok: false, reason: 'unresolvable' } }
    }
    // Named metadata services are refused by name, unless the operator allows their address.
    if (METADATA_HOSTS.has(host) && mode !== 'any') return { ok: false, reason: 'metadata-host' }
    let addresses: string[]
    try {
      addresses = await resolveCached(host)
    } catch {
      return { ok: false, reason: 'unresolvable' }
    }
    for (const address of addresses) {
      const v = addressVerdict(address)
      if (!v.ok) return { ok: false, reason: v.reason, address }
    }
    return { ok: true, addresses }
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
      if (unchecked) return url
      const v = await resolveChecked(host)
      if (v.ok) return url
      switch (v.reason) {
        case 'metadata-host':
          throw new InvalidFoundryUrl(`points at a cloud metadata service: ${REFUSAL[mode]}`)
        case 'unresolvable':
          throw new InvalidFoundryUrl(`names a host (${host}) this service cannot resolve: check the name, or send the server's IP address`)
        case 'deny-list': {
          const what = isIP(host) !== 0 ? 'an address' : 'a host that resolves to an address'
          throw new InvalidFoundryUrl(`points at ${what} this service's operator refuses (FOUNDRY_URL_DENY)`)
        }
        default: {
          const kind = classifyAddress(v.address ?? host)
          const what = isIP(host) !== 0 ? `a ${kind} address` : `a host that resolves to a ${kind} address`
          throw new InvalidFoundryUrl(`points at ${what}: ${REFUSAL[mode]}`)
        }
      }
    },

    async checkUrl (raw) {
      let url: URL
      try { url = typeof raw === 'string' ? new URL(raw) : raw } catch { return { ok: false, reason: 'bad-url' } }
      if (!NETWORK_PROTOCOLS.has(url.protocol) || url.username !== '' || url.password !== '') return { ok: false, reason: 'bad-url' }
      return await resolveChecked(bareHost(url))
    },

    resolveChecked,
    addressVerdict,
    allowAddress: (ip) => addressVerdict(ip).ok
  }
}
