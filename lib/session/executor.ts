// The executor: runs this instance's sessions in Chromium. It feeds what
// happens (a login finished or failed, a page lost its login, a timer fired,
// a client call) into the pure state machine (machine.ts) and carries out
// the effects it returns: logging in (first time, or again from the held
// credentials, with backoff timers), closing the browser, reloading the game
// page, finishing. Records go to the registry after every change, and every
// change is an event. The public API on top is manager.ts.
import type { Page } from 'puppeteer-core'
import type { BrowserPool } from '../browser/pool.ts'
import type { Logger } from '../logger.ts'
import { SessionCancelled, type ServiceError } from '../errors.ts'
import { loginToFoundry, type LoginResult, type LoginTimeouts } from '../foundry/index.ts'
import { probeFoundry } from '../foundry/probe.ts'
import { pageFunction } from '../foundry/page-scripts.ts'
import { preparePage, type PageSetupOptions } from '../browser/page-setup.ts'
import type { ScreenshotStore } from '../browser/screenshots.ts'
import type { Verdict } from '../access/url-policy.ts'
import { watchWebSockets } from '../browser/websockets.ts'
import { failureScreenshot } from './diagnostics.ts'
import { lifecycleOf, loginParams, newEntry, snapshot, wipe, type Entry, type Timers } from './entry.ts'
import type { SessionEvents } from './events.ts'
import { next, transition, type Effect, type MachineConfig, type MachineEvent } from './machine.ts'
import { createPageWatch } from './page-watch.ts'
import type { SessionRegistry } from './registry.ts'
import { isFinal, pageSetup, reconnectInfo, type Credentials, type Session, type SessionEvent } from './types.ts'

export interface ExecutorOptions {
  pool: BrowserPool
  log: Logger
  registry: SessionRegistry
  events: SessionEvents
  machine: MachineConfig
  timeouts: LoginTimeouts
  page?: PageSetupOptions | undefined
  /** The URL policy (with FOUNDRY_URL_ALLOW/DENY) for the HTTP probe: resolves and checks once, the probe connects to what passed; the browser's own connections pass the egress gate. */
  checkUrl?: ((url: URL) => Promise<Verdict>) | undefined
  screenshots?: { store: ScreenshotStore, url: (id: string) => string } | undefined
  now: () => number
  timers: Timers
  /** Told when a session starts running here (with its credentials) and when it stops without ending (released, untracked). */
  tracker?: Tracker | undefined
  /** Whether logins back in may run now (the fleet: false while this machine does not act for it); they wait otherwise. */
  mayLogIn?: (() => boolean) | undefined
}

/** Follows which sessions run here with which credentials (webhooks keep their target from it). */
export interface Tracker {
  track: (session: Session, credentials: Credentials) => void
  /** The session no longer runs here, and did not end here: another machine runs it, or it never ran. */
  release: (id: string) => void
}

export interface Executor {
  /** The sessions this instance runs, by id. */
  entries: ReadonlyMap<string, Entry>
  /** Shutting down: no new logins. */
  closing: () => boolean
  /**
   * Run a session record (new from start, or taken from the registry) with
   * its credentials: hold them, no login yet. The record keeps its id and
   * clientId.
   */
  track: (record: Session, credentials: Credentials) => Entry
  /** Drop a tracked session that never ran (its insert was refused), wiping its secrets. */
  untrack: (entry: Entry) => void
  /** Feed one event to the state machine, then carry out its effects. */
  dispatch: (entry: Entry, event: MachineEvent) => Promise<void>
  /**
   * One login into a fresh browser context, fed to the machine when it
   * succeeds, then watched; rejects with the login's error (fed to no one).
   * relogin: a login back into a session that had one (see loginParams).
   */
  logIn: (entry: Entry, relogin: boolean) => Promise<LoginResult>
  /**
   * Log a session in again from its held credentials, waiting for a login
   * slot if none is free; success and failure go to the machine (which
   * schedules the next attempt, with backoff, or gives up).
   */
  logInAgain: (entry: Entry) => Promise<void>
  /** A screenshot of a failed login's page, or undefined (none configured, or none taken). */
  screenshot: (entry: Entry) => Promise<string | undefined>
  /**
   * Stop running a session here without ending it: another machine of the
   * fleet took it over, or will (reason: its status says so meanwhile,
   * written first). The login in progress is aborted, the timers cleared,
   * the browser closed (the relay frees the module's id), the secrets wiped;
   * after the reason, this instance writes nothing more for it.
   */
  release: (entry: Entry, reason?: string) => Promise<void>
  /** End every session (shutdown) and stop the timers. */
  shutdown: () => Promise<void>
  /**
   * Every page of this machine stops by itself at `until` (its local clock)
   * unless told a later time first: a dead man's switch for a process that
   * stalls while its Chromium runs on (the fleet's lease).
   */
  extendPageLeases: (until: number) => void
}

/**
 * `work`, or the signal's reason as soon as it aborts (what `work` comes to
 * afterwards is dropped).
 */
export async function unlessAborted<T> (work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {})
  signal.throwIfAborted()
  let stop = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    stop = () => { signal.removeEventListener('abort', onAbort) }
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    stop()
  }
}

/** Shortest time between two egress events of one browser context. */
const EGRESS_REPORT_MS = 10_000

export function createExecutor (opts: ExecutorOptions): Executor {
  const { pool, log, registry, events, machine, now, timers } = opts
  const entries = new Map<string, Entry>()
  let closing = false
  const pageWatch = createPageWatch({
    dispatch,
    now,
    timers,
    machine,
    gameReadyMs: opts.timeouts.gameReady,
    egressOf: (entry) => entry.context !== null ? pool.egressOf(entry.context) : undefined
  })

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

  async function dispatch (entry: Entry, event: MachineEvent): Promise<void> {
    // A session no longer run here (finished, or released to another machine): late events change nothing.
    if (entries.get(entry.session.id) !== entry) return
    const before = entry.session.status
    const reasonBefore = entry.session.statusReason
    const attemptsBefore = entry.session.attempts
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
    pageWatch.scheduleRevival(entry)
    // Every failed attempt too (the count and the next attempt changed, the reason maybe not).
    if (state.status !== before || state.statusReason !== reasonBefore || (state.status === 'reconnecting' && state.attempts !== attemptsBefore)) {
      emit(entry, {
        type: 'status',
        sessionId: entry.session.id,
        ownerId: entry.session.ownerId,
        at: state.status !== before ? state.statusChangedAt : now(),
        status: state.status,
        reason: state.statusReason,
        previous: before,
        reconnect: reconnectInfo(state) ?? undefined,
        // A failure's catalogued code (webhooks carry it).
        code: state.status === 'failed' ? state.cause ?? (event.type === 'login-failed' ? event.code : undefined) : undefined
      })
    }
    await Promise.all(work)
  }

  async function run (entry: Entry, effect: Effect): Promise<void> {
    switch (effect.type) {
      case 'login':
        await logInAgain(entry)
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
        // framenavigated (page-watch) then waits for the game to be ready again.
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

  /** One login into a fresh browser context; resolves with the page logged in. */
  async function loginInBrowser (entry: Entry, relogin: boolean): Promise<{ page: Page, result: LoginResult }> {
    const { session } = entry
    const abort = entry.abort = new AbortController()
    session.stage = null
    const gone = (): boolean => abort.signal.aborted || isFinal(session.status)
    const context = await pool.newContext(session.id, { foundryUrl: entry.options.foundryUrl })
    if (gone()) {
      await context.close().catch(() => {})
      throw new SessionCancelled()
    }
    entry.context = context
    // The session ended or was released while its page is being made: the
    // start answers at once, not when the page arrives (the pool lets it
    // arrive before the context closes).
    const page = await unlessAborted(context.newPage(), abort.signal)
    entry.page = page
    await preparePage(page, pageSetup(opts.page, entry.options.page))
    const gate = pool.egressOf(context)
    // A page that keeps trying addresses the gate refuses is reported, not
    // ended: the first refusal at once, then at most one event per 10 s.
    let reportedAt = -Infinity
    gate?.onRefused((r) => {
      if (entry.context !== context || r.at - reportedAt < EGRESS_REPORT_MS) return
      reportedAt = r.at
      emit(entry, { type: 'egress', sessionId: session.id, ownerId: session.ownerId, at: r.at, target: r.target, reason: r.reason, refused: gate.stats().refused })
    })
    // The login shares this watcher; the session keeps it to follow the module.
    entry.ws = await watchWebSockets(page)
    const result = await loginToFoundry(page, loginParams(entry, relogin, now()), {
      timeouts: opts.timeouts,
      signal: abort.signal,
      refusal: (target) => gate?.refusal(target),
      upstreamFailure: (target) => gate?.failure(target),
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

  async function logIn (entry: Entry, relogin: boolean): Promise<LoginResult> {
    const { page, result } = await loginInBrowser(entry, relogin)
    await dispatch(entry, { type: 'login-succeeded', moduleConnected: result.clientId !== null })
    pageWatch.watch(entry, page)
    return result
  }

  async function logInAgain (entry: Entry): Promise<void> {
    if (closing || isFinal(entry.session.status)) return
    if (opts.mayLogIn?.() === false) {
      // Not acting for the fleet now: wait (no attempt counted), and ask again.
      await dispatch(entry, { type: 'no-login-slot' })
      return
    }
    // No browser while Foundry does not answer (or its world does not run):
    // a plain HTTP probe first, counted as an attempt when it says wait.
    const probe = await probeFoundry({
      foundryUrl: entry.options.foundryUrl,
      relaunchWorld: entry.options.relaunchWorld,
      worldId: entry.session.info?.worldId ?? null,
      timeoutMs: Math.min(10_000, opts.timeouts.navigation),
      checkUrl: opts.checkUrl
    })
    if (closing || isFinal(entry.session.status) || entries.get(entry.session.id) !== entry) return
    if (probe.verdict === 'wait') {
      log.debug({ sessionId: entry.session.id, attempt: entry.session.attempts + 1, code: probe.code }, 'Foundry is not back yet (HTTP probe): not logging in')
      await dispatch(entry, { type: 'login-failed', code: probe.code, message: probe.message, probe: true })
      return
    }
    // Asked again: the fleet may have fenced this machine during the probe.
    if (opts.mayLogIn?.() === false) {
      await dispatch(entry, { type: 'no-login-slot' })
      return
    }
    const release = pool.tryAcquireLogin()
    if (release === null) {
      // Other logins hold every slot: wait without counting an attempt.
      await dispatch(entry, { type: 'no-login-slot' })
      return
    }
    try {
      await logIn(entry, true)
      entry.settle.resolve(snapshot(entry.session))
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

  return {
    entries,
    closing: () => closing,
    track (record, credentials) {
      const entry = newEntry(record, credentials)
      entries.set(record.id, entry)
      opts.tracker?.track(snapshot(entry.session), credentials)
      return entry
    },
    untrack (entry) {
      if (entries.get(entry.session.id) === entry) entries.delete(entry.session.id)
      opts.tracker?.release(entry.session.id)
      wipe(entry.secrets)
    },
    dispatch,
    logIn,
    logInAgain,
    async screenshot (entry) {
      if (opts.screenshots === undefined || entry.page === null) return undefined
      return await failureScreenshot(entry.page, entry.session.ownerId, opts.screenshots, log, entry.session.id)
    },
    async release (entry, reason) {
      if (entries.get(entry.session.id) !== entry) return
      entries.delete(entry.session.id)
      // Before the status below: what follows here is the move, not news for anyone.
      opts.tracker?.release(entry.session.id)
      entry.abort.abort(new SessionCancelled())
      if (entry.retryTimer !== null) timers.clearTimeout(entry.retryTimer)
      entry.retryTimer = null
      if (reason !== undefined && !isFinal(entry.session.status)) {
        const t = now()
        const before = entry.session.status
        // Its page closes below (closeBrowser): the effect is carried out here, in this order.
        Object.assign(entry.session, next(entry.session, { type: 'leave', reason, moduleReason: 'its machine is shutting down' }, t, machine))
        await save(entry)
        emit(entry, { type: 'status', sessionId: entry.session.id, ownerId: entry.session.ownerId, at: t, status: 'reconnecting', reason, previous: before, reconnect: reconnectInfo(entry.session) ?? undefined })
      }
      await closeBrowser(entry)
      await entry.saving
      wipe(entry.secrets)
    },
    extendPageLeases (until) {
      for (const entry of entries.values()) {
        // lib/foundry/page/game.js: the page leaves by itself at `until` unless told later.
        void entry.page?.evaluate(pageFunction('game', 'lease'), until).catch(() => {})
      }
    },
    async shutdown () {
      closing = true
      timers.clearTimeout(sweeper)
      await Promise.all([...entries.values()].map(async (entry) => { await dispatch(entry, { type: 'end', by: 'shutdown' }) }))
    }
  }
}
