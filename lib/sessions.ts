// The registry of headless sessions: who owns them, their state, their
// browser contexts. A session is registered (and counted against the caps)
// before its browser opens, so a login in progress can be listed and ended.
import { randomUUID } from 'node:crypto'
import type { BrowserContext, Page } from 'puppeteer-core'
import type { BrowserPool, Logger } from './browser-pool.js'
import { AtCapacity, ServiceClosing, SessionCancelled, SessionNotFound, withContext } from './errors.js'
import { foundryBase, loginToFoundry, type LoginResult, type LoginTimeouts, type Stage } from './foundry-login.js'

export type SessionStatus = 'starting' | 'active' | 'ended' | 'failed'

export interface Session {
  id: string
  ownerId: string
  status: SessionStatus
  /** Why the status last changed, in words. */
  statusReason: string
  stage: Stage | null
  foundryUrl: string
  username: string
  worldName: string
  startedAt: number
  activeSince: number | null
  lastActivity: number
  clientId: string | null
  info: LoginResult | null
}

export interface StartRequest {
  ownerId: string
  foundryUrl: string
  username: string
  worldName?: string
  password: string
}

export interface SessionManagerOptions {
  pool: BrowserPool
  log: Logger
  maxSessions: number
  maxSessionsPerOwner: number
  timeouts: LoginTimeouts
  now?: () => number
}

export interface SessionManager {
  /** Log in and resolve once the module is connected; rejects with a client-facing error. */
  start: (req: StartRequest) => Promise<Session>
  /** End (or cancel) a session of this owner. */
  end: (ownerId: string, id: string) => Promise<Session>
  /** Snapshots of the owner's sessions; listing counts as activity. */
  list: (ownerId: string) => Session[]
  counts: () => { starting: number, active: number }
  /** Chromium pids are not per session; tests use the contexts count. */
  contexts: () => number
  endAll: () => Promise<void>
}

interface Entry {
  session: Session
  abort: AbortController
  context: BrowserContext | null
  page: Page | null
}

const RETRY_AFTER_S = 30

export function createSessionManager (opts: SessionManagerOptions): SessionManager {
  const { pool, log } = opts
  const now = opts.now ?? Date.now
  const entries = new Map<string, Entry>()
  let closing = false

  pool.onBrowserLost((lost) => {
    for (const entry of entries.values()) {
      if (entry.context !== null && lost.includes(entry.context)) {
        void finish(entry, 'failed', 'Chromium stopped; the session was lost')
      }
    }
  })

  function ownedBy (ownerId: string): Entry[] {
    return [...entries.values()].filter((e) => e.session.ownerId === ownerId)
  }

  async function finish (entry: Entry, status: 'ended' | 'failed', reason: string): Promise<void> {
    if (!entries.has(entry.session.id)) return
    entries.delete(entry.session.id)
    entry.session.status = status
    entry.session.statusReason = reason
    entry.abort.abort(new SessionCancelled())
    const ctx = entry.context
    entry.context = null
    entry.page = null
    if (ctx !== null) {
      try { await ctx.close() } catch {}
    }
    log.info({ sessionId: entry.session.id, status, reason }, 'session finished')
  }

  function watch (entry: Entry, page: Page): void {
    page.once('close', () => {
      if (entry.session.status === 'active') void finish(entry, 'failed', 'The session\'s page closed')
    })
    page.once('error', (err) => {
      log.warn({ sessionId: entry.session.id, err }, 'session page crashed')
      void finish(entry, 'failed', 'The session\'s page crashed')
    })
  }

  return {
    async start (req) {
      if (closing) throw new ServiceClosing()
      const all = [...entries.values()]
      if (all.length >= opts.maxSessions) {
        throw withContext(new AtCapacity(`This service runs its maximum of ${opts.maxSessions} sessions: end one, or retry later`), { retryAfter: RETRY_AFTER_S })
      }
      if (ownedBy(req.ownerId).length >= opts.maxSessionsPerOwner) {
        throw withContext(new AtCapacity(`This API key has its maximum of ${opts.maxSessionsPerOwner} sessions: end one with DELETE /end-session first`), { retryAfter: RETRY_AFTER_S })
      }
      const release = pool.tryAcquireLogin()
      if (release === null) {
        throw withContext(new AtCapacity('Too many logins are running at once: retry in a few seconds'), { retryAfter: 5 })
      }
      const t = now()
      const entry: Entry = {
        session: {
          id: randomUUID(),
          ownerId: req.ownerId,
          status: 'starting',
          statusReason: 'login started',
          stage: null,
          foundryUrl: foundryBase(req.foundryUrl).href,
          username: req.username,
          worldName: req.worldName ?? '',
          startedAt: t,
          activeSince: null,
          lastActivity: t,
          clientId: null,
          info: null
        },
        abort: new AbortController(),
        context: null,
        page: null
      }
      const { session, abort } = entry
      entries.set(session.id, entry)
      const log1 = { sessionId: session.id, foundryHost: new URL(req.foundryUrl).host }
      log.info(log1, 'session starting')
      try {
        const context = await pool.newContext()
        if (abort.signal.aborted) {
          await context.close().catch(() => {})
          throw new SessionCancelled()
        }
        entry.context = context
        const page = await context.newPage()
        entry.page = page
        const result = await loginToFoundry(page, req, {
          timeouts: opts.timeouts,
          signal: abort.signal,
          onStage: (stage) => {
            session.stage = stage
            log.debug({ ...log1, stage }, 'login stage')
          }
        })
        if (abort.signal.aborted || !entries.has(session.id)) throw new SessionCancelled()
        session.status = 'active'
        session.statusReason = 'logged in; the REST API module is connected'
        session.activeSince = now()
        session.lastActivity = session.activeSince
        session.clientId = result.clientId
        session.info = result
        watch(entry, page)
        log.info({ ...log1, clientId: result.clientId, ms: now() - t }, 'session active')
        return session
      } catch (err) {
        const e = abort.signal.aborted ? new SessionCancelled() : err as Error
        await finish(entry, 'failed', e.message)
        log.info({ ...log1, code: (e as { code?: string }).code }, 'session failed to start')
        throw e
      } finally {
        release()
      }
    },

    async end (ownerId, id) {
      const entry = entries.get(id)
      if (entry === undefined || entry.session.ownerId !== ownerId) throw new SessionNotFound()
      const wasStarting = entry.session.status === 'starting'
      await finish(entry, 'ended', wasStarting ? 'cancelled by the client while starting' : 'ended by the client')
      return entry.session
    },

    list (ownerId) {
      const t = now()
      // Report the activity before this call, then count the call.
      return ownedBy(ownerId).map((e) => {
        const seen = { ...e.session }
        e.session.lastActivity = t
        return seen
      })
    },

    counts () {
      let starting = 0
      let active = 0
      for (const e of entries.values()) {
        if (e.session.status === 'starting') starting++
        else if (e.session.status === 'active') active++
      }
      return { starting, active }
    },

    contexts: () => [...entries.values()].filter((e) => e.context !== null).length,

    async endAll () {
      closing = true
      for (const entry of [...entries.values()]) await finish(entry, 'ended', 'the service is shutting down')
    }
  }
}
