// What the page's WebSockets say about the REST API module's relay
// connection: connected or not, why not (by the relay's close code, as the
// module itself reads them: foundry.md §6), and whether a reload of the game
// page would bring it back. Pure: the executor feeds it the watcher's list.
import type { WsConnection } from '../browser/websockets.ts'

export interface ModuleView {
  connected: boolean
  reason: string
  /** The module will not come back by itself, but a reload would (relay unreachable). */
  revivable: boolean
  /** Last sign of its connection: opened, answered or closed (epoch ms). */
  lastSeenAt: number
}

export interface RelayIdentity {
  /** Relay origin + path the module connected to at login ('' when unknown). */
  relayUrl: string
  /** The id it announced (null when unknown). */
  clientId: string | null
}

/** The module's sockets: to its relay with its id (or, unknown, any socket carrying the module's id and worldId query). */
export function moduleConnections (connections: WsConnection[], relay: RelayIdentity): WsConnection[] {
  return connections.filter((c) => {
    const q = c.url.searchParams
    if (relay.relayUrl !== '' && `${c.url.origin}${c.url.pathname}` !== relay.relayUrl) return false
    if (relay.clientId !== null) return q.get('id') === relay.clientId
    return q.has('id') && q.has('worldId')
  })
}

function closedReason (c: WsConnection): { reason: string, revivable: boolean } {
  const code = c.closeCode ?? 1006
  if (c.status === undefined || code === 1006) {
    return { reason: `the relay is unreachable (close ${code}); the module retries by itself, and once it gives up a reload brings it back when the relay answers`, revivable: true }
  }
  switch (code) {
    case 4004:
      return { reason: 'the relay gave the module\'s id to another browser (close 4004: replaced); the module retries by itself', revivable: false }
    case 1000:
      return { reason: 'the relay closed the module\'s connection normally (close 1000: replaced by a connection with the same id, or told to stop); the module does not reconnect by itself', revivable: false }
    case 1008:
      return { reason: 'the relay refused the module\'s connection token (close 1008); pair the world again', revivable: false }
    case 4001:
    case 4002:
      return { reason: `the relay refused the module's connection (close ${code}); the module does not reconnect by itself`, revivable: false }
    default:
      return { reason: `the relay closed the module's connection (close ${code})`, revivable: true }
  }
}

/** The module's connection now, or null when the page shows none of its sockets. */
export function moduleView (connections: WsConnection[], relay: RelayIdentity): ModuleView | null {
  const mine = moduleConnections(connections, relay)
  const latest = mine.at(-1)
  if (latest === undefined) return null
  const lastSeenAt = latest.closedAt ?? latest.openedAt
  const v3 = latest.url.pathname.endsWith('/relay')
  if (!latest.closed) {
    if (latest.status === 101 && (!v3 || latest.authSucceeded)) return { connected: true, reason: 'connected to its relay', revivable: false, lastSeenAt }
    const before = mine.at(-2)
    const after = before !== undefined && before.closed ? `, after: ${closedReason(before).reason}` : ''
    return { connected: false, reason: `connecting to its relay${after}`, revivable: false, lastSeenAt }
  }
  return { connected: false, ...closedReason(latest), lastSeenAt }
}

/** The relay's HTTP address for a reachability probe (ws → http, wss → https), or null. */
export function relayProbeUrl (connections: WsConnection[], relay: RelayIdentity): URL | null {
  const c = moduleConnections(connections, relay).at(-1)
  const base = relay.relayUrl !== '' ? relay.relayUrl : c !== undefined ? `${c.url.origin}${c.url.pathname}` : ''
  if (base === '') return null
  try {
    const u = new URL(base)
    if (u.protocol === 'ws:') u.protocol = 'http:'
    else if (u.protocol === 'wss:') u.protocol = 'https:'
    else return null
    return u
  } catch {
    return null
  }
}
