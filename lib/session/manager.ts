// The session manager: the public API over the executor (executor.ts) —
// start (start.ts: the key's same live session, the start lock, the caps and
// the login slots), end, list, subscribe, counts, endAll, and the fleet's
// hooks (running, takeOver, release, beforeShutdown, keepAgain). Records come
// from the registry; the sessions this instance runs from the executor.
import type { BrowserPool } from '../browser/pool.ts'
import type { Logger } from '../logger.ts'
import { SessionNotFound } from '../errors.ts'
import type { LoginTimeouts } from '../foundry/index.ts'
import type { PageSetupOptions } from '../browser/page-setup.ts'
import type { ScreenshotStore } from '../browser/screenshots.ts'
import type { Verdict } from '../access/url-policy.ts'
import { releaseSecrets, snapshot, type Timers } from './entry.ts'
import { createSessionEvents } from './events.ts'
import { createExecutor, type Tracker } from './executor.ts'
import { DEFAULT_MACHINE, next, type MachineConfig } from './machine.ts'
import { createMemoryRegistry, type SessionRegistry } from './registry.ts'
import { createStart, type StartResult } from './start.ts'
import { isFinal, type Credentials, type Session, type SessionEventListener, type StartRequest } from './types.ts'

export type { StartResult }

export interface SessionManagerOptions {
  pool: BrowserPool
  log: Logger
  maxSessions: number
  maxSessionsPerOwner: number
  timeouts: LoginTimeouts
  /** Page tuning for every session (default: DEFAULT_PAGE_SETUP). */
  page?: PageSetupOptions
  /** The URL policy for the executor's HTTP probe of Foundry (resolves and checks once; the probe connects to what passed). */
  checkUrl?: (url: URL) => Promise<Verdict>
  screenshots?: ScreenshotStore
  /** The URL a screenshot id is served at (required with screenshots). */
  screenshotUrl?: (id: string) => string
  /** Where records live (default: in memory). */
  registry?: SessionRegistry
  /** End a session after this long without an API call naming or listing it (0: never). */
  idleTimeoutMs?: number
  /** End a session this long after it started (0: never). */
  maxLifetimeMs?: number
  /** Failed logins in a row before a session that lost its login is given up (default 0: no limit). */
  reloginAttempts?: number
  /** First back-off delay; doubles per attempt up to maxBackoffMs (default 1000). */
  reloginBaseMs?: number
  /** Longest back-off delay (default 60 s). */
  maxBackoffMs?: number
  /** Longest delay after an HTTP probe found Foundry away (default 5 s). */
  probeMaxMs?: number
  /** Longest a session keeps reconnecting before it fails (default 0: never gives up). */
  reconnectMaxMs?: number
  /** How long ended and failed sessions stay listed (default 10 min). */
  retainEndedMs?: number
  /** How long the module's connection must show no sign of life before a reload may bring it back (default 60 s). */
  moduleReviveAfterMs?: number
  /**
   * Keep a new session's credentials for another machine to log it in with
   * (the fleet with SESSION_SEAL_KEY: sealed, in the registry, deleted with
   * the record). Runs once the record is inserted, before the login.
   */
  keepCredentials?: (id: string, credentials: Credentials, ownerId: string) => Promise<void>
  /** See ExecutorOptions.mayLogIn. */
  mayLogIn?: () => boolean
  now?: () => number
  timers?: Timers
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
  /** Follow which sessions start and stop running here, with their credentials (see Tracker); returns the unsubscribe function. */
  onTrack: (tracker: Tracker) => () => void
  /** The fleet: this machine no longer acts for it (its lease is half gone): every page closes now, logins wait. */
  fence: (reason: string) => Promise<void>
  /** See Executor.extendPageLeases. */
  extendPageLeases: (until: number) => void
  /** Ids of the sessions this instance runs (any status). */
  ids: () => string[]
  /** Hear of a session leaving this instance without ending (handed over, taken by another machine, dropped). */
  onLeave: (listener: (id: string) => void) => () => void
}

/**
 * How long a session taken over from another machine waits for Foundry to
 * drop the previous machine's login before replacing it: past Foundry's own
 * socket timeout (socket.io's ping interval and timeout, 45 s), so only a
 * stale "active" flag is ever replaced.
 */
export const TAKEOVER_YIELD_MS = 60_000

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
    maxBackoffMs: opts.maxBackoffMs ?? DEFAULT_MACHINE.maxBackoffMs,
    probeMaxMs: opts.probeMaxMs ?? DEFAULT_MACHINE.probeMaxMs,
    reconnectMaxMs: opts.reconnectMaxMs ?? DEFAULT_MACHINE.reconnectMaxMs,
    moduleReviveAfterMs: opts.moduleReviveAfterMs ?? DEFAULT_MACHINE.moduleReviveAfterMs
  }
  const caps = { maxSessions: opts.maxSessions, maxPerOwner: opts.maxSessionsPerOwner }
  const trackers = new Set<Tracker>()
  const each = (fn: (t: Tracker) => void): void => {
    for (const t of [...trackers]) {
      try { fn(t) } catch (err) { log.error({ err }, 'a session tracker failed') }
    }
  }
  const { screenshots, screenshotUrl } = opts
  const executor = createExecutor({
    pool,
    log,
    registry,
    events,
    machine,
    timeouts: opts.timeouts,
    page: opts.page,
    checkUrl: opts.checkUrl,
    screenshots: screenshots !== undefined && screenshotUrl !== undefined ? { store: screenshots, url: screenshotUrl } : undefined,
    now,
    timers: opts.timers ?? { setTimeout, clearTimeout },
    tracker: {
      track: (session, credentials) => { each((t) => { t.track(session, credentials) }) },
      release: (id) => { each((t) => { t.release(id) }) }
    },
    mayLogIn: opts.mayLogIn
  })
  const { entries, dispatch } = executor
  const shutdownSteps: Array<() => Promise<void>> = []
  const leaveListeners = new Set<(id: string) => void>()

  const start = createStart({ registry, executor, pool, log, caps, now, keepCredentials: opts.keepCredentials })

  return {
    start,

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
      const entry = executor.track(next(record, { type: 'adopt', reason }, now(), machine), credentials)
      // Its previous machine's page may still hold the login (a stalled
      // process keeps its sockets open): for a while, wait for Foundry to
      // let that login go instead of replacing it (never two logins at once).
      entry.yieldToActiveUntil = now() + TAKEOVER_YIELD_MS
      // Its first login here is a login back in: same id, clientId, counts.
      entry.settle.resolve(snapshot(entry.session))
      void dispatch(entry, { type: 'relogin-due' })
    },

    async release (id, reason) {
      const entry = entries.get(id)
      if (entry === undefined) return false
      await executor.release(entry, reason)
      for (const fn of [...leaveListeners]) { try { fn(id) } catch {} }
      return true
    },

    onLeave (listener) {
      leaveListeners.add(listener)
      return () => { leaveListeners.delete(listener) }
    },

    beforeShutdown (step) { shutdownSteps.push(step) },

    onTrack (tracker) {
      trackers.add(tracker)
      return () => { trackers.delete(tracker) }
    },

    async fence (reason) {
      await Promise.all([...entries.values()].map(async (e) => { await dispatch(e, { type: 'fenced', reason }) }))
    },

    extendPageLeases: executor.extendPageLeases,

    ids: () => [...entries.keys()],

    async keepAgain () {
      const keep = opts.keepCredentials
      if (keep === undefined) return 0
      let n = 0
      for (const e of [...entries.values()]) {
        if (isFinal(e.session.status)) continue
        await keep(e.session.id, { options: e.options, secrets: releaseSecrets(e.secrets) }, e.session.ownerId)
        n++
      }
      return n
    }
  }
}
