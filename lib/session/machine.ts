// The session lifecycle as a pure transition function: (state, event, now)
// → (state, effects). starting → active ⇄ reconnecting → failed | ended,
// with idle timeout, maximum lifetime, backoff to a cap and the bounds on
// reconnecting (SESSION_RECONNECT_MAX_MS, RELOGIN_ATTEMPTS; none by default).
// A failed login back in whose cause no waiting fixes (causes.ts) fails the
// session at once; any other keeps it reconnecting. No
// clock, timer, browser or I/O here: the executor (manager.ts) feeds events
// in, with the time, and carries out the effects.
//
// While active, the REST API module's relay connection is part of the state:
// its own reconnects are only observed; when it stays down after a close it
// does not recover from by itself (relay unreachable until it gave up) and
// the relay answers again, the game page is reloaded to bring it back.
// A session that Foundry logs out while another login of the same user is
// active (a human took it over) fails instead of logging back in against it.
import { isPermanent } from './causes.ts'
import { isFinal, type Lifecycle, type ModuleState } from './types.ts'

export interface MachineConfig {
  /** End a session after this long without an API call naming or listing it (0: never). */
  idleTimeoutMs: number
  /** End a session this long after it started (0: never). */
  maxLifetimeMs: number
  /** Failed logins in a row, while reconnecting, before the session fails (0: no limit). */
  reloginAttempts: number
  /** First backoff delay; doubles per failed attempt up to maxBackoffMs. */
  reloginBaseMs: number
  maxBackoffMs: number
  /**
   * Longest delay after an HTTP probe (no browser) found Foundry away: a
   * probe is one request, so a session that waits for Foundry checks it
   * often and logs in soon after it is back, however long it was away.
   */
  probeMaxMs: number
  /** Longest a session keeps reconnecting before it fails (0: never gives up). */
  reconnectMaxMs: number
  /** How long the module's connection must have shown no sign of life before a reload may bring it back. */
  moduleReviveAfterMs: number
}

export const DEFAULT_MACHINE: MachineConfig = {
  idleTimeoutMs: 0,
  maxLifetimeMs: 0,
  reloginAttempts: 0,
  reloginBaseMs: 1000,
  maxBackoffMs: 60_000,
  probeMaxMs: 5000,
  reconnectMaxMs: 0,
  moduleReviveAfterMs: 60_000
}

/** Foundry's error code when the user is logged in elsewhere and the login did not replace it. */
export const USER_ALREADY_ACTIVE = 'USER_ALREADY_ACTIVE'

/** The cause of a session reconnecting before its first attempt failed: its page lost the login. */
export const LOGIN_LOST = 'LOGIN_LOST'

export type MachineEvent =
  /** A login (first or again) finished with the game ready (and the module connected when required). */
  | { type: 'login-succeeded', moduleConnected: boolean }
  /** A login (first or again) failed; probe: no login was tried, the HTTP probe found Foundry away. */
  | { type: 'login-failed', code: string, message: string, probe?: boolean }
  /**
   * An active session's page lost its login (Foundry restart, page crash,
   * Chromium died); loggedOut: Foundry sent the page to its join page.
   */
  | { type: 'login-lost', reason: string, loggedOut?: boolean }
  /** What the page shows of the module's relay connection now. */
  | { type: 'module', connected: boolean, reason: string, revivable: boolean, lastSeenAt: number }
  /** The module's relay answers again (probed while the module was down). */
  | { type: 'relay-back' }
  /** The relogin timer fired. */
  | { type: 'relogin-due' }
  /** The relogin could not get a login slot: wait without counting an attempt. */
  | { type: 'no-login-slot' }
  /** The client ended the session (or cancelled its start), or the service is closing. */
  | { type: 'end', by: 'client' | 'shutdown' }
  /** An API call named or listed the session (at: when, if it was on another machine of the fleet). */
  | { type: 'activity', at?: number }
  /** Periodic check of the idle timeout and maximum lifetime. */
  | { type: 'tick' }
  /**
   * The fleet: this machine's lease on its sessions is half gone (cut off
   * from Redis, or stalled): the page closes before another machine may
   * take the session; logins wait until it acts for the fleet again.
   */
  | { type: 'fenced', reason: string }
  /**
   * The fleet: the session leaves this machine's page without ending (handed
   * over, claimed by another machine, left for the next machine on shutdown):
   * reconnecting with the reason, the module not connected (moduleReason).
   */
  | { type: 'leave', reason: string, moduleReason: string }
  /**
   * The fleet: this machine takes over a live session another machine ran
   * (handover, crash recovery, its own previous life): reconnecting with the
   * reason, due to log in at once (the executor that tracks it does), a fresh
   * attempt count.
   */
  | { type: 'adopt', reason: string }
  /**
   * The session is over for a reason decided away from its page: written by a
   * machine that does not run it (its machine's lease ran out, its end was
   * asked for on another machine), or a restored record that cannot run.
   * Nothing runs here to finish.
   */
  | { type: 'over', status: 'ended' | 'failed', reason: string }

export type Effect =
  /** Log in again in a fresh browser context (the executor answers with login-succeeded/-failed or no-login-slot). */
  | { type: 'login' }
  /** Fire relogin-due after delayMs (replacing any pending one). */
  | { type: 'schedule-relogin', delayMs: number }
  /** Close the session's browser context. */
  | { type: 'close-browser' }
  /** Reload the game page (the module connects again after Foundry's ready). */
  | { type: 'reload-game' }
  /**
   * The session is over: abort a login in progress, cancel the relogin
   * timer, close the browser, wipe the secrets, keep the record as ended.
   */
  | { type: 'finish' }

export interface Transition {
  state: Lifecycle
  effects: Effect[]
}

/** A session registered for its first login. */
export function initialState (now: number): Lifecycle {
  return {
    status: 'starting',
    statusReason: 'login started',
    statusChangedAt: now,
    startedAt: now,
    activeSince: null,
    endedAt: null,
    lastActivity: now,
    relogins: 0,
    attempts: 0,
    cause: null,
    nextAttemptAt: null,
    loggedOut: false,
    module: null
  }
}

/** Whether a reload may bring the module back now: active, module down, revivable, quiet long enough. */
export function moduleNeedsRevival (state: Lifecycle, now: number, config: MachineConfig): boolean {
  const m = state.module
  return state.status === 'active' && m !== null && !m.connected && m.revivable && now - m.lastSeenAt >= config.moduleReviveAfterMs
}

function moduleState (prev: ModuleState | null, connected: boolean, reason: string, now: number, patch: Partial<ModuleState> = {}): ModuleState {
  const since = prev !== null && prev.connected === connected ? prev.since : now
  const revivedAt = connected ? null : prev?.revivedAt ?? null
  return { connected, since, reason, revivable: false, lastSeenAt: now, revivedAt, ...patch }
}

/** Delay before the next login after `attempts` failed ones in a row (≥ 1). */
export function backoffMs (attempts: number, config: MachineConfig): number {
  return Math.min(config.maxBackoffMs, config.reloginBaseMs * 2 ** Math.max(0, attempts - 1))
}

/** "2 min 5 s", for reasons. */
function duration (ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`
}

/** When the next tick can change something (idle or lifetime), or null. */
export function nextDeadline (state: Lifecycle, config: MachineConfig): number | null {
  if (state.status === 'starting' || isFinal(state.status)) return null
  const times: number[] = []
  if (config.idleTimeoutMs > 0) times.push(state.lastActivity + config.idleTimeoutMs)
  if (config.maxLifetimeMs > 0) times.push(state.startedAt + config.maxLifetimeMs)
  return times.length === 0 ? null : Math.min(...times)
}

const stay = (state: Lifecycle): Transition => ({ state, effects: [] })

function to (state: Lifecycle, status: Lifecycle['status'], reason: string, now: number, patch: Partial<Lifecycle> = {}): Lifecycle {
  return { ...state, ...patch, status, statusReason: reason, statusChangedAt: now }
}

/** The session is over (ended or failed): patch sets what else changes with it (its cause, its attempts). */
function finish (state: Lifecycle, status: 'ended' | 'failed', reason: string, now: number, patch: Partial<Lifecycle> = {}): Transition {
  return { state: to(state, status, reason, now, { ...patch, endedAt: now }), effects: [{ type: 'finish' }] }
}

export function transition (state: Lifecycle, event: MachineEvent, now: number, config: MachineConfig = DEFAULT_MACHINE): Transition {
  // Over is over: late answers of a cancelled login, timers, ticks change nothing.
  if (isFinal(state.status)) return stay(state)
  const { status } = state

  switch (event.type) {
    case 'activity': {
      const at = Math.min(now, event.at ?? now)
      return at > state.lastActivity ? stay({ ...state, lastActivity: at }) : stay(state)
    }

    case 'end':
      if (event.by === 'shutdown') return finish(state, 'ended', 'the service is shutting down', now)
      return finish(state, 'ended', status === 'starting' ? 'cancelled by the client while starting' : 'ended by the client', now)

    case 'tick': {
      if (status === 'starting') return stay(state)
      if (config.idleTimeoutMs > 0 && now - state.lastActivity >= config.idleTimeoutMs) {
        const minutes = Math.round((now - state.lastActivity) / 60_000)
        return finish(state, 'ended', `idle for ${minutes} minutes without an API call naming or listing it`, now)
      }
      if (config.maxLifetimeMs > 0 && now - state.startedAt >= config.maxLifetimeMs) {
        return finish(state, 'ended', 'reached the maximum session lifetime', now)
      }
      return stay(state)
    }

    case 'login-succeeded': {
      if (status !== 'starting' && status !== 'reconnecting') return stay(state)
      const module = event.moduleConnected
        ? moduleState(null, true, 'connected to its relay', now)
        : moduleState(null, false, 'not connected (the login did not wait for it)', now)
      if (status === 'starting') {
        const reason = event.moduleConnected ? 'logged in; the REST API module is connected' : 'logged in; the REST API module was not required'
        return { state: to(state, 'active', reason, now, { activeSince: now, attempts: 0, module }), effects: [] }
      }
      return {
        state: to(state, 'active', `logged back in after: ${state.statusReason}`, now, {
          activeSince: now, attempts: 0, cause: null, nextAttemptAt: null, relogins: state.relogins + 1, loggedOut: false, module
        }),
        effects: []
      }
    }

    case 'login-failed':
      if (status === 'starting') return finish(state, 'failed', event.message, now, { cause: event.code })
      if (status === 'reconnecting') {
        const attempts = state.attempts + 1
        if (state.loggedOut && event.code === USER_ALREADY_ACTIVE) {
          return finish(state, 'failed', 'taken over: Foundry logged this session out and shows its user logged in elsewhere (another login of the same user replaced it); not logging back in against it. Start the session again once that login has ended', now, { attempts, cause: event.code, nextAttemptAt: null })
        }
        const reason = `logging back in failed (${event.code}): ${event.message}`
        if (isPermanent(event.code)) {
          return finish(state, 'failed', `${reason}; not tried again: waiting cannot fix this`, now, { attempts, cause: event.code, nextAttemptAt: null })
        }
        if (config.reloginAttempts > 0 && attempts >= config.reloginAttempts) {
          return finish(state, 'failed', `${reason}; gave up after ${attempts} attempts`, now, { attempts, cause: event.code, nextAttemptAt: null })
        }
        // Reconnecting since the status last changed (failed attempts keep the time).
        const since = state.statusChangedAt
        if (config.reconnectMaxMs > 0 && now - since >= config.reconnectMaxMs) {
          return finish(state, 'failed', `${reason}; gave up after reconnecting for ${duration(now - since)} (SESSION_RECONNECT_MAX_MS)`, now, { attempts, cause: event.code, nextAttemptAt: null })
        }
        // The last attempt falls on the bound, not past it.
        const left = config.reconnectMaxMs > 0 ? since + config.reconnectMaxMs - now : Infinity
        const delayMs = Math.min(backoffMs(attempts, config), event.probe === true ? config.probeMaxMs : Infinity, left)
        // Still reconnecting: the reason says why, the status did not change.
        return {
          state: { ...state, attempts, statusReason: reason, cause: event.code, nextAttemptAt: now + delayMs },
          effects: [{ type: 'close-browser' }, { type: 'schedule-relogin', delayMs }]
        }
      }
      return stay(state)

    case 'login-lost':
      if (status !== 'active') return stay(state)
      return {
        state: to(state, 'reconnecting', event.reason, now, {
          attempts: 0,
          cause: LOGIN_LOST,
          nextAttemptAt: now,
          loggedOut: event.loggedOut === true,
          module: moduleState(state.module, false, 'the game page is gone: the session is logging back in', now)
        }),
        effects: [{ type: 'close-browser' }, { type: 'schedule-relogin', delayMs: 0 }]
      }

    case 'module': {
      const m = state.module
      if (status !== 'active' || m === null) return stay(state)
      // After a reload, only a sign of the module since then can call for another.
      const revivable = event.revivable && (m.revivedAt === null || event.lastSeenAt > m.revivedAt)
      const lastSeenAt = Math.max(m.lastSeenAt, event.lastSeenAt)
      if (m.connected === event.connected && m.revivable === revivable && (m.reason === event.reason || (!revivable && m.revivedAt !== null))) {
        return lastSeenAt === m.lastSeenAt ? stay(state) : stay({ ...state, module: { ...m, lastSeenAt } })
      }
      return stay({ ...state, module: moduleState(m, event.connected, event.reason, now, { revivable, lastSeenAt }) })
    }

    case 'relay-back':
      if (!moduleNeedsRevival(state, now, config)) return stay(state)
      return {
        state: { ...state, module: { ...state.module!, reason: `${state.module!.reason}; the relay answers again: reloaded the game page to bring the module back`, revivable: false, lastSeenAt: now, revivedAt: now } },
        effects: [{ type: 'reload-game' }]
      }

    case 'relogin-due':
      return status === 'reconnecting' ? { state, effects: [{ type: 'login' }] } : stay(state)

    case 'fenced':
      if (status === 'starting') {
        // The start request answers 503 FLEET_UNAVAILABLE with this reason (start.ts): retry, elsewhere or later.
        return finish(state, 'failed', `${event.reason} while it was logging in: start it again`, now, { cause: 'FLEET_UNAVAILABLE' })
      }
      return {
        state: { ...leaving(state, `${event.reason}: the session waits until it can act again`, now, 'not connected: its machine is cut off from the fleet'), nextAttemptAt: now + config.reloginBaseMs },
        effects: [{ type: 'close-browser' }, { type: 'schedule-relogin', delayMs: config.reloginBaseMs }]
      }

    case 'leave':
      return { state: leaving(state, event.reason, now, event.moduleReason), effects: [{ type: 'close-browser' }] }

    case 'adopt':
      return { state: { ...leaving(state, event.reason, now, 'not connected: the session is moving to this machine'), nextAttemptAt: now, loggedOut: false }, effects: [] }

    case 'over':
      return { state: to(state, event.status, event.reason, now, { endedAt: now, ...('stage' in state ? { stage: null } : {}) }), effects: [] }

    case 'no-login-slot':
      return status === 'reconnecting'
        ? { state: { ...state, nextAttemptAt: now + config.reloginBaseMs }, effects: [{ type: 'schedule-relogin', delayMs: config.reloginBaseMs }] }
        : stay(state)
  }
}

/**
 * A live session leaving its page (fenced, handed over, taken over by
 * another machine): reconnecting with the reason, the module not connected.
 */
function leaving<S extends Lifecycle> (state: S, reason: string, now: number, moduleReason: string): S {
  return {
    ...state,
    status: 'reconnecting',
    statusReason: reason,
    statusChangedAt: now,
    ...('stage' in state ? { stage: null } : {}),
    attempts: 0,
    cause: LOGIN_LOST,
    nextAttemptAt: null,
    module: state.module === null ? null : { ...state.module, connected: false, since: now, reason: moduleReason, revivable: false, lastSeenAt: now, revivedAt: null }
  }
}

/**
 * A record (a Session, or any state with more fields than the lifecycle's)
 * after an event, through transition(): the other fields kept, the effects
 * left to whoever runs the session (the callers that build a record for the
 * registry run none).
 */
export function next<S extends Lifecycle> (record: S, event: MachineEvent, now: number, config: MachineConfig = DEFAULT_MACHINE): S {
  return { ...record, ...transition(record, event, now, config).state }
}
