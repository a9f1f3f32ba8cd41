// The executor: runs this instance's sessions in Chromium. It feeds what
// happens (a login finished or failed, a page lost its login, a timer
// fired, a client call) into the pure state machine (machine.ts) and
// carries out the effects it returns; records go to the registry, secrets
// stay here as Buffers wiped when the session ends, and every change is an
// event (events.ts).
import { randomUUID } from 'node:crypto'
import type { BrowserContext, Page } from 'puppeteer-core'
import type { BrowserPool, Logger } from '../browser-pool.js'
import { AtCapacity, ServiceClosing, SessionCancelled, SessionNotFound, withContext, type ServiceError } from '../errors.js'
import { foundryBase, loginToFoundry, matchWorld, type LoginParams, type LoginResult, type LoginTimeouts } from '../foundry/index.js'
import { preparePage, type PageSetupOptions } from '../page-setup.js'
import { pageFunction } from '../foundry/page-scripts.js'
import type { ScreenshotStore } from '../screenshots.js'
import { createSessionEvents } from './events.js'
import { DEFAULT_MACHINE, initialState, moduleNeedsRevival, transition, type Effect, type MachineConfig, type MachineEvent } from './machine.js'
import { moduleView, relayProbeUrl } from './module-watch.js'
import { watchWebSockets, type WsWatcher } from '../websockets.js'
import { createMemoryRegistry, sameKey, type SessionRegistry } from './registry.js'
import {
  isFinal, pageSetup, type Lifecycle, type Session, type SessionEvent, type SessionEventListener, type SessionOptions,
  type StartRequest
} from './types.js'

export interface Timers {
  setTimeout: (fn: () => void, ms: number) => NodeJS.Timeout
  clearTimeout: (t: NodeJS.Timeout) => void
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
  /** The URL a screenshot id is served at (required with screenshots). */
  screenshotUrl?: (id: string) => string
  /** Where records live (default: in memory). */
  registry?: SessionRegistry
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
  /** How long the module's connection must show no sign of life before a reload may bring it back (default 60 s). */
  moduleReviveAfterMs?: number
  now?: () => number
  timers?: Timers
}

export interface StartResult {
  session: Session
  /** The key already had this session: no second login happened. */
  existing: boolean
}

export interface SessionManager {
  /** Log in and resolve once the module is connected; rejects with a client-facing error. */
  start: (req: StartRequest) => Promise<StartResult>
  /** End (or cancel) a session of this owner; a failed one is removed from the list. */
  end: (ownerId: string, id: string) => Promise<Session>
  /** Snapshots of the owner's sessions, ended ones included; listing counts as activity. */
  list: (ownerId: string) => Promise<Session[]>
  /** Follow one of the owner's sessions; throws SessionNotFound for an unknown or another key's id. */
  subscribe: (ownerId: string, sessionId: string, listener: SessionEventListener) => Promise<() => void>
  /** Follow every session's events (audit lines, metrics). */
  onEvent: (listener: SessionEventListener) => () => void
  /** This instance's live sessions by status. */
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
  /** This instance's copy, authoritative for a session it runs. */
  session: Session
  options: SessionOptions
  secrets: Secrets
  /** The login in progress, aborted when the session finishes. */
  abort: AbortController
  context: BrowserContext | null
  page: Page | null
  /** The page's WebSocket watcher, held for the session's life (the module's relay connection). */
  ws: WsWatcher | null
  /** The next check whether the module needs bringing back. */
  reviveTimer: NodeJS.Timeout | null
  /** Settles with the first login. */
  ready: Promise<Session>
  retryTimer: NodeJS.Timeout | null
  /** Registry writes, in order. */
  saving: Promise<void>
}

const LOGIN_SLOTS_RETRY_AFTER_S = 5

/** Another start of the same login holds the start lock (registry insert). */
class StartLockHeld extends Error {
  constructor (readonly holder: string) { super('the same login is starting') }
}

const snapshot = (s: Session): Session => structuredClone(s)

function lifecycleOf (s: Session): Lifecycle {
  const { status, statusReason, statusChangedAt, startedAt, activeSince, endedAt, lastActivity, relogins, attempts, loggedOut, module } = s
  return { status, statusReason, statusChangedAt, startedAt, activeSince, endedAt, lastActivity, relogins, attempts, loggedOut, module }
}

function secretBuffer (value: string | undefined): Buffer | null {
  return value !== undefined && value !== '' ? Buffer.from(value, 'utf8') : null
}

export function createSessionManager (opts: SessionManagerOptions): SessionManager {
  const { pool, log } = opts
  const now = opts.now ?? Date.now
  const timers: Timers = opts.timers ?? { setTimeout, clearTimeout }
  const registry = opts.registry ?? createMemoryRegistry({ retainEndedMs: opts.retainEndedMs ?? 600_000 })
  const events = createSessionEvents(log)
  const machine: MachineConfig = {
    ...DEFAULT_MACHINE,
    idleTimeoutMs: opts.idleTimeoutMs ?? 0,
    maxLifetimeMs: opts.maxLifetimeMs ?? 0,
    reloginAttempts: opts.reloginAttempts ?? DEFAULT_MACHINE.reloginAttempts,
    reloginBaseMs: opts.reloginBaseMs ?? DEFAULT_MACHINE.reloginBaseMs,
    moduleReviveAfterMs: opts.moduleReviveAfterMs ?? DEFAULT_MACHINE.moduleReviveAfterMs
  }
  const caps = { maxSessions: opts.maxSessions, maxPerOwner: opts.maxSessionsPerOwner }
  /** The sessions this instance runs. */
  const entries = new Map<string, Entry>()
  let closing = false

  pool.onBrowserLost((lost) => {
    for (const entry of entries.values()) {
      if (entry.context !== null && lost.includes(entry.context)) {
        entry.context = null
        entry.page = null
        void dispatch(entry, { type: 'login-lost', reason: 'Chromium stopped' })
      }
    }
  })

  // Idle timeout, maximum lifetime, and forgetting old ended sessions.
  const sweepMs = Math.max(1000, Math.min(30_000, ...[machine.idleTimeoutMs, machine.maxLifetimeMs].filter((v) => v > 0).map((v) => Math.ceil(v / 4))))
  const sweeper = timers.setTimeout(function sweep () {
    void (async () => {
      // API calls for these sessions made on other machines of the fleet count too.
      const touched = await registry.touched([...entries.keys()]).catch(() => new Map<string, number>())
      for (const entry of [...entries.values()]) {
        const at = touched.get(entry.session.id)
        if (at !== undefined) await dispatch(entry, { type: 'activity', at })
        void dispatch(entry, { type: 'tick' })
      }
      await registry.prune(now()).catch((err) => { log.warn({ err }, 'pruning ended sessions failed') })
    })().finally(() => { if (!closing) sweeper.refresh() })
  }, sweepMs)
  sweeper.unref()

  function emit (entry: Entry, event: SessionEvent): void {
    events.emit(event, snapshot(entry.session))
  }

  function save (entry: Entry, write: (s: Session) => Promise<void> = async (s) => { await registry.update(s) }): Promise<void> {
    const record = snapshot(entry.session)
    entry.saving = entry.saving.then(async () => { await write(record) }).catch((err) => {
      log.error({ err, sessionId: record.id }, 'the session registry refused a write')
    })
    return entry.saving
  }

  /** Feed one event to the state machine, then carry out its effects. */
  async function dispatch (entry: Entry, event: MachineEvent): Promise<void> {
    const before = entry.session.status
    const reasonBefore = entry.session.statusReason
    const moduleBefore = entry.session.module
    const current = lifecycleOf(entry.session)
    const { state, effects } = transition(current, event, now(), machine)
    if (state === current && effects.length === 0) return
    Object.assign(entry.session, state)
    const work = effects.map(async (effect) => { await run(entry, effect) })
    if (!isFinal(state.status)) void save(entry)
    const m = state.module
    if (m !== null && (moduleBefore === null || m.connected !== moduleBefore.connected || m.reason !== moduleBefore.reason)) {
      emit(entry, { type: 'module', sessionId: entry.session.id, ownerId: entry.session.ownerId, at: m.since, connected: m.connected, clientId: entry.session.clientId, reason: m.reason })
    }
    scheduleRevival(entry)
    if (state.status !== before || state.statusReason !== reasonBefore) {
      emit(entry, {
        type: 'status',
        sessionId: entry.session.id,
        ownerId: entry.session.ownerId,
        at: state.statusChangedAt,
        status: state.status,
        reason: state.statusReason,
        previous: before
      })
    }
    await Promise.all(work)
  }

  async function run (entry: Entry, effect: Effect): Promise<void> {
    switch (effect.type) {
      case 'login':
        await relogin(entry)
        return
      case 'schedule-relogin':
        if (entry.retryTimer !== null) timers.clearTimeout(entry.retryTimer)
        entry.retryTimer = timers.setTimeout(() => {
          entry.retryTimer = null
          void dispatch(entry, { type: 'relogin-due' })
        }, effect.delayMs)
        entry.retryTimer.unref()
        return
      case 'close-browser':
        await closeBrowser(entry)
        return
      case 'reload-game': {
        const page = entry.page
        log.info({ sessionId: entry.session.id }, 'the module stayed disconnected and its relay answers again: reloading the game page')
        // framenavigated (watch) then waits for the game to be ready again.
        await page?.reload({ waitUntil: 'domcontentloaded' }).catch((err: Error) => {
          log.warn({ sessionId: entry.session.id, err: err.message }, 'reloading the game page failed')
        })
        return
      }
      case 'finish':
        entries.delete(entry.session.id)
        entry.abort.abort(new SessionCancelled())
        if (entry.retryTimer !== null) timers.clearTimeout(entry.retryTimer)
        entry.retryTimer = null
        wipe(entry.secrets)
        await Promise.all([save(entry, async (s) => { await registry.finish(s) }), closeBrowser(entry)])
    }
  }

  async function closeBrowser (entry: Entry): Promise<void> {
    const ctx = entry.context
    const ws = entry.ws
    entry.context = null
    entry.page = null
    entry.ws = null
    if (entry.reviveTimer !== null) timers.clearTimeout(entry.reviveTimer)
    entry.reviveTimer = null
    // The context first, at once: the watcher goes with its page anyway.
    await Promise.all([
      ctx?.close().catch(() => {}),
      ws?.detach()
    ])
  }

  function wipe (secrets: Secrets): void {
    secrets.password.fill(0)
    secrets.adminPassword?.fill(0)
    secrets.connectionToken?.fill(0)
  }

  function loginParams (entry: Entry, relogin: boolean): LoginParams {
    const { options: o, secrets } = entry
    return {
      foundryUrl: o.foundryUrl,
      username: o.username,
      password: secrets.password.toString('utf8'),
      worldName: o.worldName,
      adminPassword: secrets.adminPassword?.toString('utf8'),
      connectionToken: secrets.connectionToken?.toString('utf8'),
      requireModule: o.requireModule,
      // Logging back in replaces this session's own stale login, unless
      // Foundry logged it out: then another login may hold the user.
      loginIfActive: relogin ? !entry.session.loggedOut : o.loginIfActive,
      launchWorld: !relogin || o.relaunchWorld
    }
  }

  /** One login into a fresh browser context; resolves with the page logged in. */
  async function login (entry: Entry, relogin: boolean): Promise<{ page: Page, result: LoginResult }> {
    const { session } = entry
    const abort = entry.abort = new AbortController()
    session.stage = null
    const gone = (): boolean => abort.signal.aborted || isFinal(session.status)
    const context = await pool.newContext()
    if (gone()) {
      await context.close().catch(() => {})
      throw new SessionCancelled()
    }
    entry.context = context
    const page = await context.newPage()
    entry.page = page
    await preparePage(page, pageSetup(opts.page, entry.options.page))
    // The login shares this watcher; the session keeps it to follow the module.
    entry.ws = await watchWebSockets(page)
    const result = await loginToFoundry(page, loginParams(entry, relogin), {
      timeouts: opts.timeouts,
      signal: abort.signal,
      onStage: (stage) => {
        if (session.stage === stage) return
        session.stage = stage
        log.debug({ sessionId: session.id, stage }, 'login stage')
        void save(entry)
        emit(entry, { type: 'stage', sessionId: session.id, ownerId: session.ownerId, at: now(), stage })
      }
    })
    if (gone()) throw new SessionCancelled()
    session.info = result
    session.clientId = result.clientId
    session.stage = null
    return { page, result }
  }

  /** Take a screenshot of a failed login's page, with every password field empty. */
  async function screenshot (entry: Entry): Promise<string | undefined> {
    const { screenshots, screenshotUrl } = opts
    if (screenshots === undefined || screenshotUrl === undefined || entry.page === null) return undefined
    try {
      await entry.page.evaluate(pageFunction('common', 'clearPasswords'))
      const png = await entry.page.screenshot({ type: 'png' })
      return screenshotUrl(screenshots.put(entry.session.ownerId, png))
    } catch (err) {
      log.warn({ sessionId: entry.session.id, err }, 'failure screenshot could not be taken')
      return undefined
    }
  }

  /** Watch an active session's page for anything that loses the login, and its module's relay connection. */
  function watch (entry: Entry, page: Page): void {
    const base = foundryBase(entry.options.foundryUrl)
    const gamePath = new URL('game', base).pathname
    const joinPath = new URL('join', base).pathname
    const lost = (reason: string, loggedOut = false): void => {
      if (entry.page === page) void dispatch(entry, { type: 'login-lost', reason, loggedOut })
    }
    const ws = entry.ws
    if (ws !== null) {
      const relay = { relayUrl: '', clientId: entry.session.clientId }
      const follow = (): void => {
        if (entry.page !== page || entry.ws !== ws) return
        const view = moduleView(ws.connections(), relay)
        if (view !== null) void dispatch(entry, { type: 'module', ...view })
      }
      ws.onChange(follow)
      follow()
    }
    page.on('framenavigated', (frame) => {
      if (frame !== page.mainFrame() || entry.page !== page || entry.session.status !== 'active') return
      let path = ''
      try { path = new URL(frame.url()).pathname } catch {}
      if (path === joinPath) {
        lost('Foundry logged the page out and sent it to /join (server restarted, session expired, or another login of the same user replaced this one)', true)
        return
      }
      if (path !== gamePath) {
        lost(`Foundry sent the page to ${path === '' ? 'another site' : path} (world shut down, server restarted or connection lost)`)
        return
      }
      // Foundry reloads /game after a long disconnect: it must get ready again.
      page.waitForFunction(pageFunction('game', 'ready'), { timeout: opts.timeouts.gameReady, polling: 250 })
        .catch(() => {
          if (entry.session.status === 'active') lost('Foundry reloaded the game page and it did not get ready again')
        })
    })
    page.once('error', () => { lost('the session\'s page crashed') })
    page.once('close', () => { lost('the session\'s page closed') })
  }

  /** While the module is down for a reason a reload cures, check (and probe its relay) once it has been quiet long enough. */
  function scheduleRevival (entry: Entry): void {
    const m = entry.session.module
    if (entry.reviveTimer !== null) { timers.clearTimeout(entry.reviveTimer); entry.reviveTimer = null }
    if (entry.session.status !== 'active' || m === null || m.connected || !m.revivable) return
    const delay = Math.max(0, m.lastSeenAt + machine.moduleReviveAfterMs - now())
    entry.reviveTimer = timers.setTimeout(() => {
      entry.reviveTimer = null
      void reviveCheck(entry)
    }, delay)
    entry.reviveTimer.unref()
  }

  async function reviveCheck (entry: Entry): Promise<void> {
    if (!moduleNeedsRevival(lifecycleOf(entry.session), now(), machine) || entry.ws === null) return
    const url = relayProbeUrl(entry.ws.connections(), { relayUrl: '', clientId: entry.session.clientId })
    if (url !== null && await relayAnswers(url)) {
      await dispatch(entry, { type: 'relay-back' })
      return
    }
    // Not yet: look again in a while.
    if (entry.reviveTimer !== null || !moduleNeedsRevival(lifecycleOf(entry.session), now(), machine)) return
    entry.reviveTimer = timers.setTimeout(() => {
      entry.reviveTimer = null
      void reviveCheck(entry)
    }, Math.min(machine.moduleReviveAfterMs, 5000))
    entry.reviveTimer.unref()
  }

  /** Whether the relay answers HTTP at all (any status), within the URL policy. */
  async function relayAnswers (url: URL): Promise<boolean> {
    const allow = opts.page?.allowRequest
    if (allow !== undefined && !(await allow(url))) return false
    try {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(3000) })
      await res.body?.cancel()
      return true
    } catch {
      return false
    }
  }

  async function relogin (entry: Entry): Promise<void> {
    if (closing || isFinal(entry.session.status)) return
    const release = pool.tryAcquireLogin()
    if (release === null) {
      // Other logins hold every slot: wait without counting an attempt.
      await dispatch(entry, { type: 'no-login-slot' })
      return
    }
    try {
      const { page, result } = await login(entry, true)
      await dispatch(entry, { type: 'login-succeeded', moduleConnected: result.clientId !== null })
      watch(entry, page)
      log.info({ sessionId: entry.session.id, clientId: entry.session.clientId }, 'session logged back in')
    } catch (err) {
      if (isFinal(entry.session.status)) return
      const e = err as ServiceError
      log.warn({ sessionId: entry.session.id, attempt: entry.session.attempts + 1, code: e.code }, 'logging back in failed')
      await dispatch(entry, { type: 'login-failed', code: e.code ?? 'error', message: e.message })
    } finally {
      release()
    }
  }

  /** A live session of this key for the same Foundry, user and world. */
  async function sameSession (ownerId: string, o: SessionOptions): Promise<Session | undefined> {
    const world = o.worldName
    const sameWorld = (s: Session): boolean => {
      if (world === '' || s.worldName.toLowerCase() === world.toLowerCase()) return true
      return s.info !== null && matchWorld([{ id: s.info.worldId, title: s.info.worldTitle }], world) !== undefined
    }
    const candidates = await registry.findSame({ ownerId, foundryUrl: foundryBase(o.foundryUrl).href, username: o.username })
    for (const s of candidates) {
      if (sameWorld(s)) return s
      // A login that named no world: its world is known once it is in.
      const entry = entries.get(s.id)
      if (s.status === 'starting' && s.worldName === '' && entry !== undefined) {
        const after = await entry.ready.catch(() => undefined)
        if (after !== undefined && !isFinal(entry.session.status) && sameWorld(entry.session)) return snapshot(entry.session)
      }
    }
    return undefined
  }

  /**
   * The session holding the start lock, once its login is over (or undefined
   * when it is gone). Here: its ready promise; on another machine: its record.
   */
  async function settled (id: string): Promise<Session | undefined> {
    const entry = entries.get(id)
    if (entry !== undefined) {
      await entry.ready.catch(() => {})
      return snapshot(entry.session)
    }
    for (;;) {
      const s = await registry.get(id)
      if (s === undefined || s.status !== 'starting') return s
      if (closing) throw new ServiceClosing()
      await new Promise((resolve) => timers.setTimeout(() => { resolve(undefined) }, 250))
    }
  }

  async function startOnce (req: StartRequest): Promise<StartResult> {
    if (closing) throw new ServiceClosing()
    const { ownerId, options, secrets } = req
    const found = await sameSession(ownerId, options)
    if (closing) throw new ServiceClosing()
    if (found !== undefined) {
      const entry = entries.get(found.id)
      // Still logging in on another machine: its answer is ours (start()).
      if (entry === undefined && found.status === 'starting') throw new StartLockHeld(found.id)
      if (entry === undefined) {
        await registry.touch([found.id], now())
        return { session: found, existing: true }
      }
      await entry.ready
      await dispatch(entry, { type: 'activity' })
      return { session: snapshot(entry.session), existing: true }
    }
    const t = now()
    let settle!: { resolve: (s: Session) => void, reject: (e: Error) => void }
    const ready = new Promise<Session>((resolve, reject) => { settle = { resolve, reject } })
    ready.catch(() => {}) // only awaited by a second start for the same session
    const entry: Entry = {
      session: {
        id: randomUUID(),
        ownerId,
        ...initialState(t),
        stage: null,
        foundryUrl: foundryBase(options.foundryUrl).href,
        username: options.username,
        worldName: options.worldName,
        clientId: null,
        info: null
      },
      options,
      secrets: {
        password: Buffer.from(secrets.password, 'utf8'),
        adminPassword: secretBuffer(secrets.adminPassword),
        connectionToken: secretBuffer(secrets.connectionToken)
      },
      abort: new AbortController(),
      context: null,
      page: null,
      ws: null,
      reviveTimer: null,
      ready,
      retryTimer: null,
      saving: Promise.resolve()
    }
    const { session } = entry
    // Known here before the registry answers, so a second start finds its ready promise.
    entries.set(session.id, entry)
    const release = await (async () => {
      const holder = await registry.insert(snapshot(session), caps, sameKey(ownerId, session.foundryUrl, options.username, options.worldName))
      if (holder !== null) throw new StartLockHeld(holder)
      const release = pool.tryAcquireLogin()
      if (release !== null) return release
      await registry.remove(session.id)
      throw withContext(new AtCapacity('Too many logins are running at once: retry in a few seconds'), { retryAfter: LOGIN_SLOTS_RETRY_AFTER_S })
    })().catch((err: unknown) => {
      entries.delete(session.id)
      wipe(entry.secrets)
      settle.reject(err as Error)
      throw err
    })
    log.debug({ sessionId: session.id, foundryHost: new URL(options.foundryUrl).host }, 'session starting')
    try {
      const { page, result } = await login(entry, false)
      await dispatch(entry, { type: 'login-succeeded', moduleConnected: result.clientId !== null })
      watch(entry, page)
      log.debug({ sessionId: session.id, clientId: session.clientId, ms: now() - t }, 'session active')
      const done = snapshot(session)
      settle.resolve(done)
      return { session: done, existing: false }
    } catch (err) {
      const cancelled = isFinal(session.status) || entry.abort.signal.aborted
      // A login cut short by the service closing was not the client's doing:
      // tell it to retry (elsewhere), not that it cancelled.
      const e = (cancelled ? (closing ? new ServiceClosing() : new SessionCancelled()) : err) as ServiceError
      if (!cancelled && options.screenshotOnFailure) {
        const url = await screenshot(entry)
        if (url !== undefined) withContext(e, { screenshot: url })
      }
      await dispatch(entry, { type: 'login-failed', code: e.code ?? 'error', message: e.message })
      settle.reject(e)
      throw e
    } finally {
      release()
    }
  }

  return {
    async start (req) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await startOnce(req)
        } catch (err) {
          if (!(err instanceof StartLockHeld)) throw err
          // The same login started at the same moment, here or on another
          // machine of the fleet: its answer is ours.
          const other = await settled(err.holder)
          if (other !== undefined && !isFinal(other.status)) {
            const entry = entries.get(other.id)
            if (entry !== undefined) await dispatch(entry, { type: 'activity' })
            else await registry.touch([other.id], now()).catch(() => {})
            return { session: entry !== undefined ? snapshot(entry.session) : other, existing: true }
          }
          // It failed or ended meanwhile: this start logs in after all (once).
          if (attempt >= 2) throw new SessionCancelled()
        }
      }
    },

    async end (ownerId, id) {
      const entry = entries.get(id)
      if (entry !== undefined && entry.session.ownerId === ownerId) {
        await dispatch(entry, { type: 'end', by: 'client' })
        return snapshot(entry.session)
      }
      // A failed session stays listed until its owner removes it.
      const gone = await registry.get(id)
      if (gone?.ownerId === ownerId && gone.status === 'failed') {
        await registry.remove(id)
        return gone
      }
      throw new SessionNotFound()
    },

    async list (ownerId) {
      const records = await registry.listByOwner(ownerId)
      // Sessions run by other machines of the fleet: their machine counts the call.
      const elsewhere = records.filter((r) => !entries.has(r.id) && !isFinal(r.status)).map((r) => r.id)
      if (elsewhere.length > 0) await registry.touch(elsewhere, now())
      // Report the activity before this call, then count the call.
      return await Promise.all(records.map(async (r) => {
        const entry = entries.get(r.id)
        if (entry === undefined) return r
        const seen = snapshot(entry.session)
        await dispatch(entry, { type: 'activity' })
        return seen
      }))
    },

    async subscribe (ownerId, sessionId, listener) {
      const s = entries.get(sessionId)?.session ?? await registry.get(sessionId)
      if (s === undefined || s.ownerId !== ownerId) throw new SessionNotFound()
      return events.onSession(sessionId, listener)
    },

    onEvent: events.onEvent,

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
      timers.clearTimeout(sweeper)
      await Promise.all([...entries.values()].map(async (entry) => { await dispatch(entry, { type: 'end', by: 'shutdown' }) }))
    }
  }
}
