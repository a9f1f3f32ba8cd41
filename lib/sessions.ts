// The registry of headless sessions: who owns them, their state, their
// browser contexts, and keeping them logged in. A session is registered (and
// counted against the caps) before its browser opens, so a login in progress
// can be listed and ended. Once active, a session watches its page and logs
// itself back in, with backoff, when Foundry, the page or Chromium drops it.
import { randomUUID } from 'node:crypto'
import type { BrowserContext, Page } from 'puppeteer-core'
import type { BrowserPool, Logger } from './browser-pool.js'
import { AtCapacity, ServiceClosing, SessionCancelled, SessionNotFound, withContext, type ServiceError } from './errors.js'
import {
  foundryBase, loginToFoundry, matchWorld, type LoginParams, type LoginResult, type LoginTimeouts, type Stage
} from './foundry-login.js'
import { DEFAULT_PAGE_SETUP, preparePage, type PageSetupOptions } from './page-setup.js'
import { pageFunction } from './foundry/page-scripts.js'
import type { ScreenshotStore } from './screenshots.js'

export type SessionStatus = 'starting' | 'active' | 'reconnecting' | 'failed' | 'ended'

export interface Session {
  id: string
  ownerId: string
  status: SessionStatus
  /** Why the status last changed, in words. */
  statusReason: string
  statusChangedAt: number
  stage: Stage | null
  foundryUrl: string
  username: string
  worldName: string
  startedAt: number
  activeSince: number | null
  endedAt: number | null
  lastActivity: number
  clientId: string | null
  info: LoginResult | null
  /** Times the session was logged back in after losing its login. */
  relogins: number
}

export interface StartRequest {
  ownerId: string
  foundryUrl: string
  username: string
  worldName?: string
  password: string
  adminPassword?: string
  connectionToken?: string
  /** Wait for the REST API module (default true). */
  requireModule?: boolean
  /** Log in even if Foundry shows the user as active elsewhere. */
  loginIfActive?: boolean
  /** When logging back in, launch the world if it was shut down (default false). */
  relaunchWorld?: boolean
  /** Keep a screenshot of the page if the login fails. */
  screenshotOnFailure?: boolean
  /** Per-session page tuning, over the manager's defaults. */
  page?: Partial<PageSetupOptions>
}

export interface SessionManagerOptions {
  pool: BrowserPool
  log: Logger
  maxSessions: number
  maxSessionsPerOwner: number
  timeouts: LoginTimeouts
  /** Page tuning for every session (default: DEFAULT_PAGE_SETUP). */
  page?: PageSetupOptions
  screenshots?: ScreenshotStore
  /** Path under which a screenshot id is served (default /failure-screenshot/). */
  screenshotPath?: string
  /** End a session after this long without an API call naming or listing it (0: never). */
  idleTimeoutMs?: number
  /** End a session this long after it started (0: never). */
  maxLifetimeMs?: number
  /** Failed logins in a row before a session that lost its login is given up (default 5). */
  reloginAttempts?: number
  /** First back-off delay; doubles per attempt up to 30 s (default 1000). */
  reloginBaseMs?: number
  /** How long ended and failed sessions stay listed (default 10 min). */
  retainEndedMs?: number
  now?: () => number
}

export interface StartResult {
  session: Session
  /** The key already had this session: no second login happened. */
  existing: boolean
}

export interface SessionManager {
  /** Log in and resolve once the module is connected; rejects with a client-facing error. */
  start: (req: StartRequest) => Promise<StartResult>
  /** End (or cancel) a session of this owner. */
  end: (ownerId: string, id: string) => Promise<Session>
  /** Snapshots of the owner's sessions, ended ones included; listing counts as activity. */
  list: (ownerId: string) => Session[]
  counts: () => { starting: number, active: number, reconnecting: number }
  endAll: () => Promise<void>
}

/** Secrets held for logging back in: buffers, zeroed when the session ends. */
interface Secrets {
  password: Buffer
  adminPassword: Buffer | null
  connectionToken: Buffer | null
}

interface Entry {
  session: Session
  req: Omit<StartRequest, 'password' | 'adminPassword' | 'connectionToken'>
  secrets: Secrets
  /** The login in progress, aborted by end(). */
  abort: AbortController
  context: BrowserContext | null
  page: Page | null
  /** Settles with the first login. */
  ready: Promise<Session>
  retryTimer: NodeJS.Timeout | null
  /** Failed re-logins in a row. */
  attempts: number
}

const RETRY_AFTER_S = 30
const MAX_BACKOFF_MS = 30_000
const MAX_RETAINED = 1000

export function createSessionManager (opts: SessionManagerOptions): SessionManager {
  const { pool, log } = opts
  const now = opts.now ?? Date.now
  const entries = new Map<string, Entry>()
  const ended = new Map<string, Session>()
  const reloginAttempts = opts.reloginAttempts ?? 5
  const reloginBaseMs = opts.reloginBaseMs ?? 1000
  const retainEndedMs = opts.retainEndedMs ?? 600_000
  let closing = false

  pool.onBrowserLost((lost) => {
    for (const entry of entries.values()) {
      if (entry.context !== null && lost.includes(entry.context)) {
        entry.context = null
        entry.page = null
        lostLogin(entry, 'Chromium stopped')
      }
    }
  })

  // Idle timeout, maximum lifetime, and forgetting old ended sessions.
  const sweeper = setTimeout(function sweep () {
    const t = now()
    for (const entry of [...entries.values()]) {
      const s = entry.session
      if (s.status === 'starting') continue
      if ((opts.idleTimeoutMs ?? 0) > 0 && t - s.lastActivity >= opts.idleTimeoutMs!) {
        void finish(entry, 'ended', `idle for ${Math.round((t - s.lastActivity) / 60_000)} minutes without an API call naming or listing it`)
      } else if ((opts.maxLifetimeMs ?? 0) > 0 && t - s.startedAt >= opts.maxLifetimeMs!) {
        void finish(entry, 'ended', 'reached the maximum session lifetime')
      }
    }
    for (const [id, s] of ended) if (t - (s.endedAt ?? t) >= retainEndedMs) ended.delete(id)
    if (!closing) sweeper.refresh()
  }, Math.max(1000, Math.min(30_000, ...[opts.idleTimeoutMs, opts.maxLifetimeMs].filter((v): v is number => v !== undefined && v > 0).map((v) => Math.ceil(v / 4)))))
  sweeper.unref()

  function ownedBy (ownerId: string): Entry[] {
    return [...entries.values()].filter((e) => e.session.ownerId === ownerId)
  }

  function setStatus (s: Session, status: SessionStatus, reason: string): void {
    s.status = status
    s.statusReason = reason
    s.statusChangedAt = now()
  }

  async function closeBrowser (entry: Entry): Promise<void> {
    const ctx = entry.context
    entry.context = null
    entry.page = null
    if (ctx !== null) {
      try { await ctx.close() } catch {}
    }
  }

  function wipe (secrets: Secrets): void {
    secrets.password.fill(0)
    secrets.adminPassword?.fill(0)
    secrets.connectionToken?.fill(0)
  }

  async function finish (entry: Entry, status: 'ended' | 'failed', reason: string): Promise<void> {
    if (entries.get(entry.session.id) !== entry) return
    entries.delete(entry.session.id)
    setStatus(entry.session, status, reason)
    entry.session.endedAt = now()
    entry.abort.abort(new SessionCancelled())
    if (entry.retryTimer !== null) clearTimeout(entry.retryTimer)
    wipe(entry.secrets)
    ended.set(entry.session.id, entry.session)
    while (ended.size > MAX_RETAINED) ended.delete(ended.keys().next().value as string)
    await closeBrowser(entry)
    log.info({ sessionId: entry.session.id, status, reason }, 'session finished')
  }

  function loginParams (entry: Entry, relogin: boolean): LoginParams {
    const { req, secrets } = entry
    return {
      foundryUrl: req.foundryUrl,
      username: req.username,
      password: secrets.password.toString('utf8'),
      ...(req.worldName !== undefined ? { worldName: req.worldName } : {}),
      ...(secrets.adminPassword !== null ? { adminPassword: secrets.adminPassword.toString('utf8') } : {}),
      ...(secrets.connectionToken !== null ? { connectionToken: secrets.connectionToken.toString('utf8') } : {}),
      ...(req.requireModule !== undefined ? { requireModule: req.requireModule } : {}),
      // Logging back in replaces this session's own stale login.
      loginIfActive: relogin || req.loginIfActive === true,
      launchWorld: !relogin || req.relaunchWorld === true
    }
  }

  /** One login into a fresh browser context; on success the session is active and watched. */
  async function login (entry: Entry, relogin: boolean): Promise<void> {
    const { session } = entry
    const abort = entry.abort = new AbortController()
    const context = await pool.newContext()
    if (abort.signal.aborted || entries.get(session.id) !== entry) {
      await context.close().catch(() => {})
      throw new SessionCancelled()
    }
    entry.context = context
    const page = await context.newPage()
    entry.page = page
    await preparePage(page, { ...(opts.page ?? DEFAULT_PAGE_SETUP), ...entry.req.page })
    const result = await loginToFoundry(page, loginParams(entry, relogin), {
      timeouts: opts.timeouts,
      signal: abort.signal,
      onStage: (stage) => {
        session.stage = stage
        log.debug({ sessionId: session.id, stage }, 'login stage')
      }
    })
    if (abort.signal.aborted || entries.get(session.id) !== entry) throw new SessionCancelled()
    session.info = result
    session.clientId = result.clientId
    session.stage = null
    session.activeSince = now()
    entry.attempts = 0
    setStatus(session, 'active', relogin
      ? `logged back in after: ${session.statusReason}`
      : result.clientId !== null ? 'logged in; the REST API module is connected' : 'logged in; the REST API module was not required')
    watch(entry, page)
  }

  /** Take a screenshot of a failed login's page, with every password field empty. */
  async function screenshot (entry: Entry): Promise<string | undefined> {
    if (opts.screenshots === undefined || entry.page === null) return undefined
    try {
      await entry.page.evaluate(pageFunction('common', 'clearPasswords'))
      const png = await entry.page.screenshot({ type: 'png' })
      const id = opts.screenshots.put(entry.session.ownerId, png)
      return `${opts.screenshotPath ?? '/failure-screenshot/'}${id}`
    } catch (err) {
      log.warn({ sessionId: entry.session.id, err }, 'failure screenshot could not be taken')
      return undefined
    }
  }

  /** Watch an active session's page for anything that loses the login. */
  function watch (entry: Entry, page: Page): void {
    const base = foundryBase(entry.req.foundryUrl)
    const gamePath = new URL('game', base).pathname
    page.on('framenavigated', (frame) => {
      if (frame !== page.mainFrame() || entry.page !== page || entry.session.status !== 'active') return
      let path = ''
      try { path = new URL(frame.url()).pathname } catch {}
      if (path !== gamePath) {
        lostLogin(entry, `Foundry sent the page to ${path === '' ? 'another site' : path} (world shut down, server restarted or connection lost)`)
        return
      }
      // Foundry reloads /game after a long disconnect: it must get ready again.
      page.waitForFunction(pageFunction('game', 'ready'),
        { timeout: opts.timeouts.gameReady, polling: 250 })
        .catch(() => {
          if (entry.page === page && entry.session.status === 'active') lostLogin(entry, 'Foundry reloaded the game page and it did not get ready again')
        })
    })
    page.once('error', () => {
      if (entry.page === page) lostLogin(entry, 'the session\'s page crashed')
    })
    page.once('close', () => {
      if (entry.page === page) lostLogin(entry, 'the session\'s page closed')
    })
  }

  /** The login was lost: log back in with backoff, or give up after the bound. */
  function lostLogin (entry: Entry, reason: string): void {
    if (closing || entries.get(entry.session.id) !== entry || entry.session.status !== 'active') return
    log.warn({ sessionId: entry.session.id, reason }, 'session lost its login; logging back in')
    setStatus(entry.session, 'reconnecting', reason)
    void closeBrowser(entry)
    scheduleRelogin(entry, 0)
  }

  function scheduleRelogin (entry: Entry, delayMs: number): void {
    if (entry.retryTimer !== null) clearTimeout(entry.retryTimer)
    entry.retryTimer = setTimeout(() => { entry.retryTimer = null; void relogin(entry) }, delayMs)
    entry.retryTimer.unref()
  }

  async function relogin (entry: Entry): Promise<void> {
    if (closing || entries.get(entry.session.id) !== entry) return
    const release = pool.tryAcquireLogin()
    if (release === null) {
      // Other logins hold every slot: wait without counting an attempt.
      scheduleRelogin(entry, reloginBaseMs)
      return
    }
    try {
      await login(entry, true)
      entry.session.relogins++
      log.info({ sessionId: entry.session.id, clientId: entry.session.clientId }, 'session logged back in')
    } catch (err) {
      if (entries.get(entry.session.id) !== entry) return
      await closeBrowser(entry)
      entry.attempts++
      const e = err as ServiceError
      const reason = `logging back in failed (${e.code ?? 'error'}): ${e.message}`
      if (entry.attempts >= reloginAttempts) {
        await finish(entry, 'failed', `${reason}; gave up after ${entry.attempts} attempts`)
        return
      }
      entry.session.statusReason = reason
      const delay = Math.min(MAX_BACKOFF_MS, reloginBaseMs * 2 ** (entry.attempts - 1))
      log.warn({ sessionId: entry.session.id, attempt: entry.attempts, delayMs: delay, code: e.code }, 'logging back in failed; retrying')
      scheduleRelogin(entry, delay)
    } finally {
      release()
    }
  }

  /** An existing session of this key for the same Foundry, user and world. */
  async function sameSession (req: StartRequest): Promise<Entry | undefined> {
    const url = foundryBase(req.foundryUrl).href
    const world = req.worldName ?? ''
    const sameWorld = (e: Entry): boolean => {
      const s = e.session
      if (world === '' || s.worldName.toLowerCase() === world.toLowerCase()) return true
      return s.info !== null && matchWorld([{ id: s.info.worldId, title: s.info.worldTitle }], world) !== undefined
    }
    for (const e of ownedBy(req.ownerId)) {
      const s = e.session
      const sameUser = s.username.toLowerCase() === req.username.toLowerCase() || s.info?.userId === req.username
      if (s.foundryUrl !== url || !sameUser) continue
      if (sameWorld(e)) return e
      // A login that named no world: its world is known once it is in.
      if (s.status === 'starting' && s.worldName === '') {
        await e.ready.catch(() => {})
        if (entries.get(s.id) === e && sameWorld(e)) return e
      }
    }
    return undefined
  }

  return {
    async start (req) {
      if (closing) throw new ServiceClosing()
      const existing = await sameSession(req)
      if (closing) throw new ServiceClosing()
      if (existing !== undefined) {
        const session = await existing.ready
        session.lastActivity = now()
        return { session, existing: true }
      }
      if (entries.size >= opts.maxSessions) {
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
      const { password, adminPassword, connectionToken, ...rest } = req
      let settle!: { resolve: (s: Session) => void, reject: (e: Error) => void }
      const ready = new Promise<Session>((resolve, reject) => { settle = { resolve, reject } })
      ready.catch(() => {}) // only awaited by a second start for the same session
      const entry: Entry = {
        session: {
          id: randomUUID(),
          ownerId: req.ownerId,
          status: 'starting',
          statusReason: 'login started',
          statusChangedAt: t,
          stage: null,
          foundryUrl: foundryBase(req.foundryUrl).href,
          username: req.username,
          worldName: req.worldName ?? '',
          startedAt: t,
          activeSince: null,
          endedAt: null,
          lastActivity: t,
          clientId: null,
          info: null,
          relogins: 0
        },
        req: rest,
        secrets: {
          password: Buffer.from(password, 'utf8'),
          adminPassword: adminPassword !== undefined && adminPassword !== '' ? Buffer.from(adminPassword, 'utf8') : null,
          connectionToken: connectionToken !== undefined && connectionToken !== '' ? Buffer.from(connectionToken, 'utf8') : null
        },
        abort: new AbortController(),
        context: null,
        page: null,
        ready,
        retryTimer: null,
        attempts: 0
      }
      const { session } = entry
      entries.set(session.id, entry)
      const log1 = { sessionId: session.id, foundryHost: new URL(req.foundryUrl).host }
      log.info(log1, 'session starting')
      try {
        await login(entry, false)
        log.info({ ...log1, clientId: session.clientId, ms: now() - t }, 'session active')
        settle.resolve(session)
        return { session, existing: false }
      } catch (err) {
        const cancelled = entries.get(session.id) !== entry || entry.abort.signal.aborted
        const e = (cancelled ? new SessionCancelled() : err) as ServiceError
        if (!cancelled && req.screenshotOnFailure === true) {
          const url = await screenshot(entry)
          if (url !== undefined) withContext(e, { screenshot: url })
        }
        await finish(entry, 'failed', e.message)
        log.info({ ...log1, code: e.code }, 'session failed to start')
        settle.reject(e)
        throw e
      } finally {
        release()
      }
    },

    async end (ownerId, id) {
      const entry = entries.get(id)
      if (entry === undefined || entry.session.ownerId !== ownerId) {
        // A failed session stays listed until its owner removes it.
        const gone = ended.get(id)
        if (gone?.ownerId === ownerId && gone.status === 'failed') {
          ended.delete(id)
          return gone
        }
        throw new SessionNotFound()
      }
      const wasStarting = entry.session.status === 'starting'
      await finish(entry, 'ended', wasStarting ? 'cancelled by the client while starting' : 'ended by the client')
      return entry.session
    },

    list (ownerId) {
      const t = now()
      // Report the activity before this call, then count the call.
      const live = ownedBy(ownerId).map((e) => {
        const seen = { ...e.session }
        e.session.lastActivity = t
        return seen
      })
      return [...live, ...[...ended.values()].filter((s) => s.ownerId === ownerId).map((s) => ({ ...s }))]
    },

    counts () {
      const c = { starting: 0, active: 0, reconnecting: 0 }
      for (const e of entries.values()) {
        const s = e.session.status
        if (s === 'starting' || s === 'active' || s === 'reconnecting') c[s]++
      }
      return c
    },

    async endAll () {
      closing = true
      clearTimeout(sweeper)
      await Promise.all([...entries.values()].map(async (entry) => await finish(entry, 'ended', 'the service is shutting down')))
    }
  }
}
