// Webhooks: what a session's events mean to a person, sent where they asked.
// A subscriber of the session event bus (lib/session/events.ts) and a
// tracker of the sessions this machine runs (their credentials carry the
// session's webhook URL and signing secret). Five notifications:
//
//   session.failed        the session failed (with Foundry's reason and the error code)
//   session.reconnecting  it has been logging back in for reconnectingAfterMs
//   session.recovered     active again after a session.reconnecting, or the module
//                         connected again after a module.offline
//   module.offline        logged in, but the REST API module has been disconnected
//                         from its relay for moduleOfflineAfterMs
//   session.ended         it ended (by the client, idle timeout, lifetime, shutdown)
//
// Each goes to the session's own webhook (start-session encryptedWebhookUrl)
// and to the operator's (WEBHOOK_URL), from the machine running the session
// only: events happen there, and a session that moves to another machine
// (handover) is released here before anything about the move is emitted, so
// one event is sent once. A session that is over by a decision away from its
// page (the fleet's coordinator: its machine stopped and no machine could
// take it) is told by the machine that made the decision and wrote it
// (decided), once. A Discord webhook URL (its path /api/webhooks/<id>/<token>)
// gets a Discord message ({content, embeds}); any other URL the Standard
// Webhooks payload {type, timestamp, data}. No Fastify here.
import { createHash } from 'node:crypto'
import type { Logger } from '../logger.ts'
import type { Tracker } from '../session/executor.ts'
import { keyDigest } from '../session/audit.ts'
import type { Session, SessionEvent, SessionEventListener } from '../session/types.ts'
import type { Delivery, Target } from './delivery.ts'

export const WEBHOOK_TYPES = ['session.failed', 'session.reconnecting', 'session.recovered', 'module.offline', 'session.ended'] as const
export type WebhookType = typeof WEBHOOK_TYPES[number]

export interface NotifierOptions {
  log: Logger
  delivery: Delivery
  /** The operator's webhook for every session (WEBHOOK_URL), or null. */
  instance: Target | null
  instanceId: string
  reconnectingAfterMs: number
  moduleOfflineAfterMs: number
  now?: () => number
}

/** Where a session's own webhooks go (from its credentials), if anywhere. */
export interface WebhookSecrets { webhookUrl?: string | undefined, webhookSecret?: string | undefined }

export interface Notifier {
  tracker: Tracker
  listener: SessionEventListener
  /**
   * A session over (failed or ended) by a decision away from its page, that
   * this machine made and wrote (the registry let only one machine write it):
   * session.failed or session.ended, to its own webhook when its credentials
   * open here (`secrets`), and the operator's. Not for a session this
   * machine runs: its events tell those.
   */
  decided: (session: Session, secrets: WebhookSecrets | null) => void
  /** Sessions followed (tests, metrics). */
  size: () => number
  close: () => void
}

/** A Discord (or Discord-compatible) webhook: decided by the path, so a receiver on loopback can stand in. */
export function isDiscordWebhook (url: string): boolean {
  try {
    return /^\/api(?:\/v\d+)?\/webhooks\/\d+\/[A-Za-z0-9_-]+\/?$/.test(new URL(url).pathname)
  } catch {
    return false
  }
}

export interface Notification {
  type: WebhookType
  /** When what it tells of began (the same on every machine and attempt: the webhook-id is made from it). */
  at: number
  session: Session
  reason: string
  code?: string
  /** session.recovered: what it recovered from, and since when that lasted. */
  after?: 'reconnecting' | 'module-offline'
  since?: number
}

/** webhook-id: stable for one notification of one session. */
export function messageId (n: Notification): string {
  return `msg_${createHash('sha256').update(`${n.session.id}\n${n.type}\n${n.at}`).digest('hex').slice(0, 32)}`
}

/** The Standard Webhooks payload. */
export function standardBody (n: Notification, instanceId: string): string {
  const s = n.session
  return JSON.stringify({
    type: n.type,
    timestamp: new Date(n.at).toISOString(),
    data: {
      sessionId: s.id,
      instanceId,
      key: keyDigest(s.ownerId),
      status: s.status,
      reason: n.reason,
      ...(n.code !== undefined ? { code: n.code } : {}),
      ...(n.after !== undefined ? { after: n.after } : {}),
      ...(n.since !== undefined ? { since: new Date(n.since).toISOString() } : {}),
      foundryUrl: s.foundryUrl,
      world: s.info?.worldTitle ?? s.worldName,
      username: s.username,
      clientId: s.clientId ?? '',
      attempts: s.attempts,
      relogins: s.relogins,
      module: s.module === null ? null : { connected: s.module.connected, since: new Date(s.module.since).toISOString(), reason: s.module.reason }
    }
  })
}

const TITLES: Record<WebhookType, string> = {
  'session.failed': 'Foundry session failed',
  'session.reconnecting': 'Foundry session is reconnecting',
  'session.recovered': 'Foundry session recovered',
  'module.offline': 'REST API module offline',
  'session.ended': 'Foundry session ended'
}
const COLOURS: Record<WebhookType, number> = {
  'session.failed': 0xb3261e,
  'session.reconnecting': 0xe0a030,
  'session.recovered': 0x1d7a3a,
  'module.offline': 0xe0a030,
  'session.ended': 0x5c5f66
}

const cut = (s: string, n: number): string => s.length <= n ? s : `${s.slice(0, n - 1)}…`

/** A Discord message ({content, embeds}); mentions in world or user names ping no one. */
export function discordBody (n: Notification): string {
  const s = n.session
  const world = s.info?.worldTitle ?? (s.worldName !== '' ? s.worldName : 'the running world')
  const fields = [
    { name: 'World', value: cut(world, 1024), inline: true },
    { name: 'User', value: cut(s.username, 1024), inline: true },
    ...(n.code !== undefined ? [{ name: 'Code', value: n.code, inline: true }] : []),
    { name: 'Session', value: s.id, inline: false }
  ]
  return JSON.stringify({
    content: cut(`**${TITLES[n.type]}**: ${world} (${s.username})`, 2000),
    embeds: [{
      title: TITLES[n.type],
      description: cut(n.reason, 4096),
      color: COLOURS[n.type],
      fields,
      timestamp: new Date(n.at).toISOString()
    }],
    allowed_mentions: { parse: [] }
  })
}

interface Watch {
  session: Session
  target: Target | null
  reconnecting: { since: number, timer: NodeJS.Timeout | null, alerted: boolean } | null
  module: { since: number, timer: NodeJS.Timeout | null, alerted: boolean } | null
  /** The module was connected at some point: only then is its loss news. */
  moduleSeen: boolean
  /** A module.offline was sent and no recovery since (kept while the session logs back in), with its start. */
  moduleOfflineSince: number | null
}

export function createNotifier (opts: NotifierOptions): Notifier {
  const { log, delivery, instance, instanceId } = opts
  const now = opts.now ?? Date.now
  const watches = new Map<string, Watch>()

  function send (own: Target | null, n: Notification): void {
    const id = messageId(n)
    for (const target of [own, instance]) {
      if (target === null) continue
      const body = isDiscordWebhook(target.url) ? discordBody(n) : standardBody(n, instanceId)
      delivery.send(target, { id, type: n.type, sessionId: n.session.id, body })
    }
  }

  function stopReconnecting (w: Watch): void {
    if (w.reconnecting?.timer != null) clearTimeout(w.reconnecting.timer)
    w.reconnecting = null
  }
  function stopModule (w: Watch): void {
    if (w.module?.timer != null) clearTimeout(w.module.timer)
    w.module = null
  }
  function forget (id: string): void {
    const w = watches.get(id)
    if (w === undefined) return
    stopReconnecting(w)
    stopModule(w)
    watches.delete(id)
  }

  function startReconnecting (w: Watch, since: number): void {
    if (w.reconnecting !== null) return
    const r: NonNullable<Watch['reconnecting']> = { since, timer: null, alerted: false }
    w.reconnecting = r
    r.timer = setTimeout(() => {
      r.timer = null
      if (w.reconnecting !== r || watches.get(w.session.id) !== w) return
      r.alerted = true
      send(w.target, { type: 'session.reconnecting', at: r.since, session: w.session, reason: w.session.statusReason })
    }, Math.max(0, opts.reconnectingAfterMs - (now() - since)))
    r.timer.unref()
  }

  function startModule (w: Watch, since: number): void {
    if (w.module !== null) return
    const m: NonNullable<Watch['module']> = { since, timer: null, alerted: false }
    w.module = m
    m.timer = setTimeout(() => {
      m.timer = null
      if (w.module !== m || watches.get(w.session.id) !== w || w.session.status !== 'active') return
      m.alerted = true
      w.moduleOfflineSince = m.since
      send(w.target, { type: 'module.offline', at: m.since, session: w.session, reason: w.session.module?.reason ?? 'not connected' })
    }, Math.max(0, opts.moduleOfflineAfterMs - (now() - since)))
    m.timer.unref()
  }

  function onStatus (w: Watch, e: Extract<SessionEvent, { type: 'status' }>, s: Session): void {
    const changed = e.previous !== e.status
    if (e.status !== 'reconnecting') {
      const r = w.reconnecting
      stopReconnecting(w)
      if (e.status === 'active' && r?.alerted === true) {
        send(w.target, { type: 'session.recovered', at: e.at, session: s, reason: e.reason, after: 'reconnecting', since: r.since })
      }
    } else if (changed) {
      startReconnecting(w, e.at)
    }
    if (e.status !== 'active') stopModule(w)
    if (e.status === 'failed' || e.status === 'ended') {
      send(w.target, { type: e.status === 'failed' ? 'session.failed' : 'session.ended', at: e.at, session: s, reason: e.reason, ...(e.code !== undefined ? { code: e.code } : {}) })
      forget(s.id)
    }
  }

  function onModule (w: Watch, e: Extract<SessionEvent, { type: 'module' }>, s: Session): void {
    if (e.connected) {
      stopModule(w)
      w.moduleSeen = true
      const since = w.moduleOfflineSince
      w.moduleOfflineSince = null
      // Back from a reconnecting that was told of: that recovery (the status event right after) says it all.
      if (since !== null && s.status === 'active' && w.reconnecting?.alerted !== true) {
        send(w.target, { type: 'session.recovered', at: e.at, session: s, reason: e.reason, after: 'module-offline', since })
      }
      return
    }
    if (s.status === 'active' && w.moduleSeen) startModule(w, e.at)
  }

  const ownTarget = (secrets: WebhookSecrets | null): Target | null => {
    const url = secrets?.webhookUrl
    return url !== undefined && url !== '' ? { kind: 'session', url, secret: secrets?.webhookSecret ?? null } : null
  }

  return {
    decided (session, secrets) {
      if (session.status !== 'failed' && session.status !== 'ended') return
      if (watches.has(session.id)) return // runs here: its own events tell it
      try {
        send(ownTarget(secrets), { type: session.status === 'failed' ? 'session.failed' : 'session.ended', at: session.statusChangedAt, session, reason: session.statusReason })
      } catch (err) {
        log.error({ sessionId: session.id, code: (err as NodeJS.ErrnoException).code }, 'a webhook notification could not be made')
      }
    },
    tracker: {
      track (session, credentials) {
        const target = ownTarget(credentials.secrets)
        forget(session.id)
        if (target === null && instance === null) return
        const w: Watch = { session, target, reconnecting: null, module: null, moduleSeen: session.module?.connected === true, moduleOfflineSince: null }
        watches.set(session.id, w)
        // Taken over from another machine: it is logging back in here.
        if (session.status === 'reconnecting') startReconnecting(w, now())
      },
      release: forget
    },
    listener (event, session) {
      const w = watches.get(event.sessionId)
      if (w === undefined) return
      w.session = session
      try {
        if (event.type === 'status') onStatus(w, event, session)
        else if (event.type === 'module') onModule(w, event, session)
      } catch (err) {
        log.error({ sessionId: event.sessionId, code: (err as NodeJS.ErrnoException).code }, 'a webhook notification could not be made')
      }
    },
    size: () => watches.size,
    close () {
      for (const id of [...watches.keys()]) forget(id)
    }
  }
}
