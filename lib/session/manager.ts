// The session manager: the public API over the executor (executor.ts) —
// start (or find the key's same live session), end, list, subscribe, counts,
// endAll — with the caps and the login slots checked at start. Records come
// from the registry; the sessions this instance runs from the executor.
import { randomUUID } from 'node:crypto'
import type { BrowserPool, Logger } from '../browser-pool.js'
import { AtCapacity, ServiceClosing, SessionCancelled, SessionNotFound, withContext, type ServiceError } from '../errors.js'
import { foundryBase, matchWorld, type LoginTimeouts } from '../foundry/index.js'
import type { PageSetupOptions } from '../page-setup.js'
import type { ScreenshotStore } from '../screenshots.js'
import { snapshot, type Timers } from './entry.js'
import { createSessionEvents } from './events.js'
import { createExecutor } from './executor.js'
import { DEFAULT_MACHINE, initialState, type MachineConfig } from './machine.js'
import { createMemoryRegistry, sameKey, type SessionRegistry } from './registry.js'
import { isFinal, type Credentials, type Session, type SessionEventListener, type SessionOptions, type StartRequest } from './types.js'

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
  /**
   * Keep a new session's credentials for another machine to log it in with
   * (the fleet with SESSION_SEAL_KEY: sealed, in the registry, deleted with
   * the record). Runs once the record is inserted, before the login.
   */
  keepCredentials?: (id: string, credentials: Credentials) => Promise<void>
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
  /** End every session (shutdown), after the shutdown steps (beforeShutdown) ran. */
  endAll: () => Promise<void>
  /** Snapshots of the sessions this instance runs that are logged in or logging back in. */
  running: () => Session[]
  /**
   * Run a live session record taken over from another machine (the registry
   * already says this machine runs it): same id and clientId, status
   * reconnecting with the reason, logged in from the credentials.
   */
  takeOver: (record: Session, credentials: Credentials, reason: string) => void
  /** Stop running a session here without ending it (see Executor.release); false when it does not run here. */
  release: (id: string, reason?: string) => Promise<boolean>
  /** A step for endAll to run first, once (the fleet hands sessions over there). */
  beforeShutdown: (step: () => Promise<void>) => void
  /** Keep the credentials of every session running here again (keepCredentials; after the registry lost them). */
  keepAgain: () => Promise<number>
}

const LOGIN_SLOTS_RETRY_AFTER_S = 5

/** Another start of the same login holds the start lock (registry insert). */
class StartLockHeld extends Error {
  constructor (readonly holder: string) { super('the same login is starting') }
}

export function createSessionManager (opts: SessionManagerOptions): SessionManager {
  const { pool, log } = opts
  const now = opts.now ?? Date.now
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
  const { screenshots, screenshotUrl } = opts
  const executor = createExecutor({
    pool,
    log,
    registry,
    events,
    machine,
    timeouts: opts.timeouts,
    page: opts.page,
    screenshots: screenshots !== undefined && screenshotUrl !== undefined ? { store: screenshots, url: screenshotUrl } : undefined,
    now,
    timers: opts.timers ?? { setTimeout, clearTimeout }
  })
  const { entries, dispatch } = executor
  const shutdownSteps: Array<() => Promise<void>> = []

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

  /** A new session's record, before its first login. */
  function newRecord (ownerId: string, options: SessionOptions, t: number): Session {
    return {
      id: randomUUID(),
      ownerId,
      ...initialState(t),
      stage: null,
      foundryUrl: foundryBase(options.foundryUrl).href,
      username: options.username,
      worldName: options.worldName,
      clientId: null,
      info: null
    }
  }

  async function startOnce (req: StartRequest): Promise<StartResult> {
    if (executor.closing()) throw new ServiceClosing()
    const { ownerId, options, secrets } = req
    const found = await sameSession(ownerId, options)
    if (executor.closing()) throw new ServiceClosing()
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
    // Known here before the registry answers, so a second start finds its ready promise.
    const entry = executor.track(newRecord(ownerId, options, t), { options, secrets })
    const { session, settle } = entry
    const release = await (async () => {
      const holder = await registry.insert(snapshot(session), caps, sameKey(ownerId, session.foundryUrl, options.username, options.worldName))
      if (holder !== null) throw new StartLockHeld(holder)
      const release = pool.tryAcquireLogin()
      if (release !== null) {
        if (opts.keepCredentials === undefined) return release
        try {
          await opts.keepCredentials(session.id, { options, secrets })
          return release
        } catch (err) {
          release()
          await registry.remove(session.id).catch(() => {})
          throw err
        }
      }
      await registry.remove(session.id)
      throw withContext(new AtCapacity('Too many logins are running at once: retry in a few seconds'), { retryAfter: LOGIN_SLOTS_RETRY_AFTER_S })
    })().catch((err: unknown) => {
      executor.untrack(entry)
      settle.reject(err as Error)
      throw err
    })
    log.debug({ sessionId: session.id, foundryHost: new URL(options.foundryUrl).host }, 'session starting')
    try {
      await executor.logIn(entry, false)
      log.debug({ sessionId: session.id, clientId: session.clientId, ms: now() - t }, 'session active')
      const done = snapshot(session)
      settle.resolve(done)
      return { session: done, existing: false }
    } catch (err) {
      const cancelled = isFinal(session.status) || entry.abort.signal.aborted
      // A login cut short by the service closing was not the client's doing:
      // tell it to retry (elsewhere), not that it cancelled.
      const e = (cancelled ? (executor.closing() ? new ServiceClosing() : new SessionCancelled()) : err) as ServiceError
      if (!cancelled && options.screenshotOnFailure) {
        const url = await executor.screenshot(entry)
        if (url !== undefined) withContext(e, { screenshot: url })
      }
      await dispatch(entry, { type: 'login-failed', code: e.code ?? 'error', message: e.message })
      settle.reject(e)
      throw e
    } finally {
      release()
    }
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
      if (executor.closing()) throw new ServiceClosing()
      await new Promise((resolve) => { setTimeout(resolve, 250) })
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
      const steps = shutdownSteps.splice(0)
      for (const step of steps) await step().catch((err: Error) => { log.error({ err }, 'a shutdown step failed') })
      await executor.shutdown()
    },

    running () {
      return [...entries.values()].filter((e) => e.session.status === 'active' || e.session.status === 'reconnecting').map((e) => snapshot(e.session))
    },

    takeOver (record, credentials, reason) {
      const t = now()
      const entry = executor.track({
        ...record,
        status: 'reconnecting',
        statusReason: reason,
        statusChangedAt: t,
        stage: null,
        attempts: 0,
        loggedOut: false,
        module: record.module === null ? null : { ...record.module, connected: false, since: t, reason: 'not connected: the session is moving to this machine', revivable: false, lastSeenAt: t, revivedAt: null }
      }, credentials)
      // Its first login here is a login back in: same id, clientId, counts.
      entry.settle.resolve(snapshot(entry.session))
      void dispatch(entry, { type: 'relogin-due' })
    },

    async release (id, reason) {
      const entry = entries.get(id)
      if (entry === undefined) return false
      await executor.release(entry, reason)
      return true
    },

    beforeShutdown (step) { shutdownSteps.push(step) },

    async keepAgain () {
      const keep = opts.keepCredentials
      if (keep === undefined) return 0
      let n = 0
      for (const e of [...entries.values()]) {
        if (isFinal(e.session.status)) continue
        const { password, adminPassword, connectionToken } = e.secrets
        await keep(e.session.id, {
          options: e.options,
          secrets: {
            password: password.toString('utf8'),
            ...(adminPassword !== null ? { adminPassword: adminPassword.toString('utf8') } : {}),
            ...(connectionToken !== null ? { connectionToken: connectionToken.toString('utf8') } : {})
          }
        })
        n++
      }
      return n
    }
  }
}
