// The egress gate: every connection of the session browser leaves through
// it. Chromium is pointed at a local HTTP proxy (--proxy-server for the whole
// browser, and one proxy port per browser context, so the port names the
// session); Chromium then never resolves a name or opens a connection to a
// site itself (chromium.ts switches off its DNS, QUIC and secure DNS, and
// non-proxied WebRTC UDP). For each CONNECT (https, wss, ws) and each plain
// HTTP request the gate resolves the name once (`decide`: the URL policy's
// resolveChecked, mode + FOUNDRY_URL_ALLOW / FOUNDRY_URL_DENY), and connects
// to exactly the address that passed: the lookup handed to the socket
// returns that address and nothing else, so a name that changes its answer
// (DNS rebinding) has no window between the check and the connection.
//
// Built on proxy-chain (apify/proxy-chain 3.0.1): its prepareRequestFunction
// hook runs before any upstream connection and may refuse (RequestError →
// 403 to Chromium) or hand over a `dnsLookup` that the CONNECT socket and
// the plain-HTTP request use, which is the pre-resolved-address hook this
// needs. No HTTP proxy code of our own.
//
// The service's own listening sockets (its API port, METRICS_PORT) are
// refused to every session: a world's module script could otherwise call the
// service's API or read its metrics from inside the GM's browser. Only those
// ports on this machine's addresses are refused (loopback stays reachable:
// a Foundry next to the service), and not to a session whose Foundry URL
// names that very host and port.
//
// What it logs and counts names the session (its label), the target's host
// and port and the reason, never a path or query (the module's v2 relay URL
// carries `token=`) and never a header. No Fastify here.
import http from 'node:http'
import type { LookupFunction } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Duplex } from 'node:stream'
import { RequestError, Server } from 'proxy-chain'
import { pinnedLookup } from '../access/pinned-lookup.ts'
import { classifyAddress, type RefusalReason, type Verdict } from '../access/url-policy.ts'

export interface EgressLogger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
  debug: (obj: object, msg?: string) => void
}

/** Why the gate refused a connection: the policy's reason, or one of its own. */
export type EgressReason = RefusalReason | 'gate-port' | 'service-port' | 'bad-target'

export interface EgressRefusal {
  /** The session (or 'browser' for connections outside any session's context). */
  label: string
  /** host:port asked for (never a path). */
  target: string
  reason: EgressReason
  at: number
}

export interface EgressStats {
  /** Connections (CONNECT tunnels and plain HTTP requests) asked for. */
  requests: number
  refused: number
  /** Bytes read from and written to the sites, on closed connections. */
  bytesIn: number
  bytesOut: number
}

export interface EgressSession {
  readonly label: string
  /** The proxy for this session's browser context (http://127.0.0.1:port). */
  readonly proxyServer: string
  stats: () => EgressStats
  /**
   * How the last connection to host:port failed upstream (ECONNREFUSED …),
   * if it did and none succeeded since. Plain http:// only: Chromium then
   * sees the gate's 5xx answer (proxy-chain's 590–599), not a network error.
   */
  failure: (target: string) => string | undefined
  /**
   * Why the gate refused the last connection to host:port (egressTarget's
   * form), if it did and none to it passed since. A login asks this of its
   * main frame's navigation only (lib/foundry/login.ts): what the page's own
   * scripts and sub-resources were refused never decides a login's error.
   */
  refusal: (target: string) => EgressReason | undefined
  /** Called on every refused connection; returns the unsubscribe function. */
  onRefused: (fn: (r: EgressRefusal) => void) => () => void
  /**
   * The same check and pinned address for a connection the service makes
   * itself on the session's behalf (the relay probe): resolve and check once,
   * then `lookup` hands the socket that address.
   */
  pin: (host: string, port: number) => Promise<{ ok: true, lookup: LookupFunction } | { ok: false, reason: EgressReason }>
  close: () => Promise<void>
}

export interface EgressOpenOptions {
  /** The session's Foundry URL: its own host:port is not refused as the service's port. */
  foundryUrl?: string | undefined
}

export interface EgressGate {
  /** The browser-wide proxy (--proxy-server): anything outside a session's context. */
  readonly browserProxy: string
  /** A proxy port for one browser context, named `label` in logs and counts. */
  open: (label: string, opts?: EgressOpenOptions) => Promise<EgressSession>
  /**
   * A socket the service listens on (address as listened on, 0.0.0.0 / ::
   * for every address): refused to every session from now on ('service-port').
   */
  refuseService: (address: string, port: number) => void
  /** Every refusal of every session (metrics). */
  onRefused: (fn: (r: EgressRefusal) => void) => void
  /** A session's totals when it closes (metrics, logs). */
  onClosed: (fn: (label: string, stats: EgressStats) => void) => void
  /** Stop every proxy, cutting open connections. */
  close: () => Promise<void>
}

export interface EgressGateOptions {
  /** Resolve a host name (or take an IP literal) and check every address: the URL policy's resolveChecked. */
  decide: (host: string) => Promise<Verdict>
  log: EgressLogger
  /** Distinct refusals per session logged at warn; later ones at debug (default 20). */
  warnRefusals?: number
  /** This machine's addresses (default: every network interface's), for a service listening on all of them. */
  localAddresses?: () => string[]
}

const PROXY_HOST = '127.0.0.1'

const NET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'ERR_CONNECTION_REFUSED',
  ECONNRESET: 'ERR_CONNECTION_RESET',
  ETIMEDOUT: 'ERR_CONNECTION_TIMED_OUT',
  EHOSTUNREACH: 'ERR_ADDRESS_UNREACHABLE',
  ENETUNREACH: 'ERR_ADDRESS_UNREACHABLE',
  EADDRNOTAVAIL: 'ERR_ADDRESS_INVALID'
}

/** Chromium's name (without net::) for a socket error code seen by the gate. */
export function chromiumNetError (code: string): string {
  return NET_ERRORS[code] ?? 'ERR_CONNECTION_FAILED'
}

function bare (host: string): string {
  return host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase()
}

/** An address for comparison: no brackets or zone, an IPv4-mapped IPv6 address as IPv4. */
function plain (address: string): string {
  return bare(address).replace(/%.*$/, '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')
}

function interfaceAddresses (): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))
}

const WILDCARDS = new Set(['0.0.0.0', '::'])

/** host:port of a URL as the gate names targets (failure, refusal), or undefined. */
export function egressTarget (url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  try {
    const u = new URL(url)
    if (!/^(https?|wss?):$/.test(u.protocol) || u.hostname === '') return undefined
    return `${bare(u.hostname)}:${u.port !== '' ? u.port : u.protocol === 'https:' || u.protocol === 'wss:' ? '443' : '80'}`
  } catch {
    return undefined
  }
}

export async function createEgressGate (opts: EgressGateOptions): Promise<EgressGate> {
  const { decide, log } = opts
  const warnMax = opts.warnRefusals ?? 20
  const localAddresses = opts.localAddresses ?? interfaceAddresses
  const ports = new Set<number>()
  /** The service's own listening sockets: port → addresses listened on. */
  const service = new Map<number, Set<string>>()
  const sessions = new Set<EgressSession>()
  const refusedListeners: Array<(r: EgressRefusal) => void> = []
  const closedListeners: Array<(label: string, stats: EgressStats) => void> = []
  let closed = false

  /** Whether a connection to address:port would reach one of the service's own listening sockets. */
  function reachesService (address: string, port: number): boolean {
    const listened = service.get(port)
    if (listened === undefined) return false
    const a = plain(address)
    const kind = classifyAddress(a)
    // 0.0.0.0 and :: as a destination are this machine.
    if (kind === 'unspecified' || listened.has(a)) return true
    if (![...listened].some((l) => WILDCARDS.has(l))) return false
    return kind === 'loopback' || localAddresses().some((l) => plain(l) === a)
  }

  async function decideTarget (hostname: string, port: number, foundry?: string): Promise<{ ok: true, address: string } | { ok: false, reason: EgressReason }> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, reason: 'bad-target' }
    const v = await decide(bare(hostname))
    if (!v.ok) return { ok: false, reason: v.reason }
    const address = v.addresses[0]
    if (address === undefined) return { ok: false, reason: 'unresolvable' }
    // A page may not use another session's identity (or the browser's) by
    // tunnelling to its proxy port.
    if (ports.has(port) && (classifyAddress(address) === 'loopback' || classifyAddress(address) === 'unspecified')) return { ok: false, reason: 'gate-port' }
    // Nor call the service's own API or metrics, unless that is the session's Foundry.
    if (reachesService(address, port) && foundry !== `${bare(hostname)}:${port}`) return { ok: false, reason: 'service-port' }
    return { ok: true, address }
  }

  async function open (label: string, openOpts: EgressOpenOptions = {}): Promise<EgressSession> {
    if (closed) throw new Error('the egress gate is closed')
    const foundry = egressTarget(openOpts.foundryUrl)
    const stats: EgressStats = { requests: 0, refused: 0, bytesIn: 0, bytesOut: 0 }
    const failures = new Map<string, string>()
    /** target → why its last connection was refused (none passed since). */
    const refusals = new Map<string, EgressReason>()
    const listeners = new Set<(r: EgressRefusal) => void>()
    const warned = new Set<string>()
    // This session's own upstream sockets for plain HTTP: never shared with
    // another session, and each failure is recorded for error messages. No
    // socket cap of its own: Chromium already bounds connections per host.
    const agent = new http.Agent({ keepAlive: true })
    const create = agent.createConnection.bind(agent) as (o: http.ClientRequestArgs, cb?: (err: Error | null, s: Duplex) => void) => Duplex
    ;(agent as unknown as { createConnection: typeof create }).createConnection = (o, cb) => {
      const socket = create(o, cb)
      const target = `${bare(o.host ?? '')}:${o.port ?? 80}`
      socket.once('error', (err: NodeJS.ErrnoException) => { if (err.code !== undefined) failures.set(target, err.code) })
      socket.once('connect', () => { failures.delete(target) })
      return socket
    }

    function refuse (target: string, reason: EgressReason, key: string): never {
      stats.refused++
      refusals.delete(key)
      // Bounded: a page asking for ever new hosts keeps the newest only.
      if (refusals.size >= 256) refusals.delete(refusals.keys().next().value as string)
      refusals.set(key, reason)
      const r: EgressRefusal = { label, target, reason, at: Date.now() }
      const warnKey = `${target} ${reason}`
      if (!warned.has(warnKey) && warned.size < warnMax) {
        warned.add(warnKey)
        log.warn({ sessionId: label, target, reason }, 'egress gate refused a connection')
      } else {
        log.debug({ sessionId: label, target, reason }, 'egress gate refused a connection')
      }
      for (const fn of [...listeners, ...refusedListeners]) {
        try { fn(r) } catch {}
      }
      throw new RequestError(`Refused by this service's egress policy (${reason})`, 403)
    }

    const server = new Server({
      port: 0,
      host: PROXY_HOST,
      verbose: false,
      prepareRequestFunction: async ({ hostname, port }) => {
        stats.requests++
        const target = `${hostname}:${port}`
        const key = `${bare(hostname)}:${port}`
        const d = await decideTarget(hostname, port, foundry)
        if (!d.ok) refuse(target, d.reason, key)
        refusals.delete(key)
        return { dnsLookup: pinnedLookup([d.address]) as never, httpAgent: agent }
      }
    })
    server.on('connectionClosed', ({ stats: s }: { stats?: { trgRxBytes: number | null, trgTxBytes: number | null } }) => {
      stats.bytesIn += s?.trgRxBytes ?? 0
      stats.bytesOut += s?.trgTxBytes ?? 0
    })
    // Errors on the Chromium side of a connection are Chromium's business
    // (it closed a tab); proxy-chain reports them here.
    server.on('requestFailed', () => {})
    await server.listen()
    const port = server.port
    ports.add(port)
    let done: Promise<void> | undefined
    const session: EgressSession = {
      label,
      proxyServer: `http://${PROXY_HOST}:${port}`,
      stats: () => ({ ...stats }),
      failure: (target) => failures.get(target),
      refusal: (target) => refusals.get(target),
      onRefused (fn) {
        listeners.add(fn)
        return () => { listeners.delete(fn) }
      },
      async pin (host, port) {
        const d = await decideTarget(host, port, foundry)
        if (!d.ok) {
          stats.refused++
          return d
        }
        return { ok: true, lookup: pinnedLookup([d.address]) }
      },
      async close () {
        done ??= (async () => {
          sessions.delete(session)
          listeners.clear()
          await server.close(true).catch(() => {})
          agent.destroy()
          ports.delete(port)
          if (label !== 'browser') log.debug({ sessionId: label, ...stats }, 'egress totals')
          for (const fn of closedListeners) {
            try { fn(label, { ...stats }) } catch {}
          }
        })()
        await done
      }
    }
    sessions.add(session)
    return session
  }

  const browserSession = await open('browser')

  return {
    browserProxy: browserSession.proxyServer,
    open,
    refuseService (address, port) {
      let listened = service.get(port)
      if (listened === undefined) service.set(port, listened = new Set())
      listened.add(plain(address))
    },
    onRefused (fn) { refusedListeners.push(fn) },
    onClosed (fn) { closedListeners.push(fn) },
    async close () {
      closed = true
      for (const s of [...sessions]) await s.close()
    }
  }
}
