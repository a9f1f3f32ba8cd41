// The session lifecycle without Chromium: the pure transition function fed
// with events and an injected clock (numbers), in milliseconds.
import t from 'tap'
import {
  DEFAULT_MACHINE, backoffMs, initialState, next, nextDeadline, transition, type Effect, type MachineConfig, type MachineEvent
} from '../../lib/session/machine.ts'
import { CAUSES, causeOf } from '../../lib/session/causes.ts'
import { reconnectInfo, type Lifecycle } from '../../lib/session/types.ts'

const CONFIG: MachineConfig = { idleTimeoutMs: 0, maxLifetimeMs: 0, reloginAttempts: 4, reloginBaseMs: 1000, maxBackoffMs: 5000, probeMaxMs: 2000, reconnectMaxMs: 0, moduleReviveAfterMs: 10_000 }

/** Drive the machine through events at given times; keep every effect. */
function drive (steps: Array<[number, MachineEvent]>, config = CONFIG, start = 0): { state: Lifecycle, effects: Effect[][] } {
  let state = initialState(start)
  const effects: Effect[][] = []
  for (const [at, event] of steps) {
    const next = transition(state, event, at, config)
    state = next.state
    effects.push(next.effects)
  }
  return { state, effects }
}

const ok: MachineEvent = { type: 'login-succeeded', moduleConnected: true }
const fail = (code = 'FOUNDRY_UNREACHABLE'): MachineEvent => ({ type: 'login-failed', code, message: 'Foundry is down' })
const lost: MachineEvent = { type: 'login-lost', reason: 'Foundry sent the page to /join' }

t.test('a first login: starting → active, no effects', async (t) => {
  const s0 = initialState(100)
  t.match(s0, { status: 'starting', startedAt: 100, lastActivity: 100, activeSince: null, relogins: 0 })
  const { state, effects } = transition(s0, ok, 250, CONFIG)
  t.match(state, { status: 'active', activeSince: 250, statusChangedAt: 250, statusReason: /module is connected/ })
  t.same(effects, [])
  t.match(transition(s0, { type: 'login-succeeded', moduleConnected: false }, 250, CONFIG).state.statusReason, /not required/)
})

t.test('a first login that fails: failed with the error message, finished', async (t) => {
  const { state, effects } = transition(initialState(0), fail('FOUNDRY_LOGIN_REJECTED'), 40, CONFIG)
  t.match(state, { status: 'failed', statusReason: 'Foundry is down', endedAt: 40 })
  t.same(effects, [{ type: 'finish' }])
})

t.test('cancel during start: ended, the login is aborted; its late answer changes nothing', async (t) => {
  const cancelled = transition(initialState(0), { type: 'end', by: 'client' }, 10, CONFIG)
  t.match(cancelled.state, { status: 'ended', statusReason: 'cancelled by the client while starting', endedAt: 10, activeSince: null })
  t.same(cancelled.effects, [{ type: 'finish' }])
  for (const late of [ok, fail(), lost, { type: 'relogin-due' }, { type: 'tick' }, { type: 'end', by: 'client' }] as MachineEvent[]) {
    const after = transition(cancelled.state, late, 20, CONFIG)
    t.same(after, { state: cancelled.state, effects: [] }, `${late.type} after the end`)
  }
})

t.test('a lost login: reconnecting at once, browser closed; back to active counts a relogin', async (t) => {
  const { state, effects } = drive([[0, ok], [5000, lost], [5000, { type: 'relogin-due' }], [6000, ok]])
  t.same(effects[1], [{ type: 'close-browser' }, { type: 'schedule-relogin', delayMs: 0 }])
  t.same(effects[2], [{ type: 'login' }])
  t.match(state, { status: 'active', relogins: 1, attempts: 0, activeSince: 6000, statusReason: 'logged back in after: Foundry sent the page to /join' })
})

t.test('backoff doubles per failed relogin up to its cap; the reason says why; the status time stays', async (t) => {
  const config = { ...CONFIG, reloginAttempts: 10 }
  const steps: Array<[number, MachineEvent]> = [[0, ok], [100, lost]]
  for (let i = 0; i < 6; i++) steps.push([200 + i, { type: 'relogin-due' }], [200 + i, fail()])
  const { state, effects } = drive(steps, config)
  const delays = effects.flat().filter((e) => e.type === 'schedule-relogin').map((e) => (e as { delayMs: number }).delayMs)
  t.same(delays, [0, 1000, 2000, 4000, 5000, 5000, 5000], 'first at once, then 1, 2, 4 s, capped at 5 s')
  t.match(state, { status: 'reconnecting', attempts: 6, statusChangedAt: 100, statusReason: /^logging back in failed \(FOUNDRY_UNREACHABLE\): Foundry is down$/ })
  t.same([1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(n, config)), [1000, 2000, 4000, 5000, 5000, 5000, 5000])
  t.equal(backoffMs(1, DEFAULT_MACHINE), 1000)
  t.equal(backoffMs(20, DEFAULT_MACHINE), 60_000, 'the default cap is a minute')
})

t.test('a probe that found Foundry away backs off only to the probe cap; a login tried in the browser to the full cap', async (t) => {
  const config = { ...CONFIG, reloginAttempts: 0 }
  const probe = (): MachineEvent => ({ type: 'login-failed', code: 'FOUNDRY_UNREACHABLE', message: 'Foundry does not answer', probe: true })
  const steps: Array<[number, MachineEvent]> = [[0, ok], [100, lost]]
  for (let i = 0; i < 5; i++) steps.push([200 + i, { type: 'relogin-due' }], [200 + i, probe()])
  // Foundry answers again; the login in the browser fails (its world is not up yet), twice.
  for (let i = 0; i < 2; i++) steps.push([300 + i, { type: 'relogin-due' }], [300 + i, fail('WORLD_NOT_RUNNING')])
  const { state, effects } = drive(steps, config)
  const delays = effects.flat().filter((e) => e.type === 'schedule-relogin').map((e) => (e as { delayMs: number }).delayMs)
  t.same(delays, [0, 1000, 2000, 2000, 2000, 2000, 5000, 5000], 'probes: 1 s, then the 2 s probe cap; browser logins: the 5 s cap (the count goes on)')
  t.match(state, { status: 'reconnecting', attempts: 7, cause: 'WORLD_NOT_RUNNING' })
  t.equal(DEFAULT_MACHINE.probeMaxMs, 5000, 'the default probe cap is 5 s')
  // The bounds still hold with probes: each counts as an attempt, and the time bound cuts the delay.
  const bounded = drive([[0, ok], [100, lost], [200, { type: 'relogin-due' }], [200, probe()], [1200, { type: 'relogin-due' }], [1200, probe()]], { ...config, reloginAttempts: 2 })
  t.match(bounded.state, { status: 'failed', attempts: 2, statusReason: /gave up after 2 attempts$/ })
  const timed = drive([[0, ok], [100, lost], [200, { type: 'relogin-due' }], [200, probe()], [1200, { type: 'relogin-due' }], [1200, probe()]], { ...config, reconnectMaxMs: 1500 })
  t.same(timed.effects.at(-1), [{ type: 'close-browser' }, { type: 'schedule-relogin', delayMs: 400 }], 'the last probe falls on SESSION_RECONNECT_MAX_MS')
})

t.test('the relogin budget: failed after the last attempt, with the count', async (t) => {
  const steps: Array<[number, MachineEvent]> = [[0, ok], [100, lost]]
  for (let i = 0; i < 4; i++) steps.push([200 + i, { type: 'relogin-due' }], [300 + i, fail('WORLD_NOT_RUNNING')])
  const { state, effects } = drive(steps)
  t.match(state, { status: 'failed', attempts: 4, endedAt: 303, statusReason: /WORLD_NOT_RUNNING.*gave up after 4 attempts$/ })
  t.same(effects.at(-1), [{ type: 'finish' }])
  t.equal(effects.flat().filter((e) => e.type === 'login').length, 4, 'four logins tried')
})

t.test('a success resets the budget', async (t) => {
  const steps: Array<[number, MachineEvent]> = [[0, ok]]
  for (let round = 0; round < 3; round++) {
    steps.push([1, lost])
    for (let i = 0; i < 3; i++) steps.push([2, { type: 'relogin-due' }], [3, fail()])
    steps.push([4, { type: 'relogin-due' }], [5, ok])
  }
  const { state } = drive(steps)
  t.match(state, { status: 'active', relogins: 3, attempts: 0 })
})

t.test('no login slot: wait the base delay without counting an attempt', async (t) => {
  const { state, effects } = drive([[0, ok], [1, lost], [2, { type: 'relogin-due' }], [2, { type: 'no-login-slot' }]])
  t.same(effects.at(-1), [{ type: 'schedule-relogin', delayMs: 1000 }])
  t.equal(state.attempts, 0)
  t.same(transition(initialState(0), { type: 'no-login-slot' }, 1, CONFIG).effects, [], 'only while reconnecting')
})

t.test('end during reconnect: ended by the client, finished', async (t) => {
  const { state, effects } = drive([[0, ok], [1, lost], [2, { type: 'relogin-due' }], [3, { type: 'end', by: 'client' }]])
  t.match(state, { status: 'ended', statusReason: 'ended by the client', endedAt: 3 })
  t.same(effects.at(-1), [{ type: 'finish' }])
  t.match(drive([[0, ok], [1, { type: 'end', by: 'shutdown' }]]).state, { status: 'ended', statusReason: 'the service is shutting down' })
})

t.test('losing the login is ignored unless active (a second loss while reconnecting, or while starting)', async (t) => {
  const reconnecting = drive([[0, ok], [1, lost]]).state
  t.same(transition(reconnecting, { type: 'login-lost', reason: 'page closed' }, 2, CONFIG), { state: reconnecting, effects: [] })
  const starting = initialState(0)
  t.same(transition(starting, lost, 2, CONFIG), { state: starting, effects: [] })
})

t.test('idle timeout: counts from the last activity; never while starting', async (t) => {
  const config = { ...CONFIG, idleTimeoutMs: 60_000 }
  let s = transition(initialState(0), { type: 'tick' }, 10 * 60_000, config).state
  t.equal(s.status, 'starting', 'a login in progress is not idle')
  s = transition(s, ok, 1000, config).state
  t.equal(nextDeadline(s, config), 60_000)
  s = transition(s, { type: 'activity' }, 30_000, config).state
  t.equal(s.lastActivity, 30_000)
  t.equal(nextDeadline(s, config), 90_000, 'activity moves the deadline')
  t.equal(transition(s, { type: 'tick' }, 89_999, config).state.status, 'active', 'not yet')
  const { state, effects } = transition(s, { type: 'tick' }, 90_000, config)
  t.match(state, { status: 'ended', endedAt: 90_000, statusReason: 'idle for 1 minutes without an API call naming or listing it' })
  t.same(effects, [{ type: 'finish' }])
})

t.test('maximum lifetime: counts from the start, activity or not; also while reconnecting', async (t) => {
  const config = { ...CONFIG, maxLifetimeMs: 10_000 }
  let s = drive([[100, ok]], config, 0).state
  s = transition(s, { type: 'activity' }, 9_999, config).state
  t.equal(nextDeadline(s, config), 10_000)
  t.equal(transition(s, { type: 'tick' }, 9_999, config).state.status, 'active')
  t.match(transition(s, { type: 'tick' }, 10_000, config).state, { status: 'ended', statusReason: 'reached the maximum session lifetime' })
  const reconnecting = transition(s, lost, 9_000, config).state
  t.match(transition(reconnecting, { type: 'tick' }, 10_500, config), { state: { status: 'ended' }, effects: [{ type: 'finish' }] })
})

t.test('no limits: ticks change nothing and there is no deadline', async (t) => {
  const s = drive([[0, ok]]).state
  t.equal(nextDeadline(s, CONFIG), null)
  t.same(transition(s, { type: 'tick' }, 1e12, CONFIG), { state: s, effects: [] })
  t.equal(nextDeadline(initialState(0), { ...CONFIG, idleTimeoutMs: 5 }), null, 'none while starting')
})

t.test('the transition function is pure: the input state is never changed', async (t) => {
  const s = drive([[0, ok]]).state
  const frozen = Object.freeze({ ...s })
  for (const e of [lost, { type: 'activity' }, { type: 'end', by: 'client' }, { type: 'tick' }] as MachineEvent[]) {
    t.doesNotThrow(() => transition(frozen, e, 50, { ...CONFIG, idleTimeoutMs: 1 }), e.type)
  }
  t.same(frozen, s)
})

t.test('module: followed while active; since moves only when connected flips', async (t) => {
  let s = drive([[0, ok]]).state
  t.match(s.module, { connected: true, since: 0, reason: 'connected to its relay', revivedAt: null })
  s = transition(s, { type: 'module', connected: false, reason: 'close 4004', revivable: false, lastSeenAt: 100 }, 100, CONFIG).state
  t.match(s.module, { connected: false, since: 100, reason: 'close 4004', revivable: false })
  s = transition(s, { type: 'module', connected: false, reason: 'connecting', revivable: false, lastSeenAt: 200 }, 200, CONFIG).state
  t.match(s.module, { connected: false, since: 100, reason: 'connecting', lastSeenAt: 200 }, 'still down since 100')
  s = transition(s, { type: 'module', connected: true, reason: 'connected to its relay', revivable: false, lastSeenAt: 300 }, 300, CONFIG).state
  t.match(s.module, { connected: true, since: 300 })
  const notRequired = transition(initialState(0), { type: 'login-succeeded', moduleConnected: false }, 5, CONFIG).state
  t.match(notRequired.module, { connected: false, reason: /did not wait/ })
  const starting = initialState(0)
  t.same(transition(starting, { type: 'module', connected: true, reason: 'x', revivable: false, lastSeenAt: 1 }, 1, CONFIG).state, starting, 'ignored while starting')
})

t.test('module revival: only after the quiet time, only when revivable, once per sign of life', async (t) => {
  const down: MachineEvent = { type: 'module', connected: false, reason: 'the relay is unreachable (close 1006)', revivable: true, lastSeenAt: 1000 }
  let s = transition(drive([[0, ok]]).state, down, 1000, CONFIG).state
  t.equal(transition(s, { type: 'relay-back' }, 10_999, CONFIG).effects.length, 0, 'not before 10 s of quiet')
  const revived = transition(s, { type: 'relay-back' }, 11_000, CONFIG)
  t.same(revived.effects, [{ type: 'reload-game' }])
  t.match(revived.state.module, { connected: false, revivable: false, revivedAt: 11_000, reason: /reloaded the game page/ })
  s = revived.state
  // The watcher reports the same old close again: no second reload.
  s = transition(s, down, 11_500, CONFIG).state
  t.equal(s.module?.revivable, false)
  t.equal(transition(s, { type: 'relay-back' }, 60_000, CONFIG).effects.length, 0, 'no loop of reloads on the same close')
  // The module tried again after the reload and failed: a new sign of life.
  s = transition(s, { ...down, lastSeenAt: 13_000 } as MachineEvent, 13_000, CONFIG).state
  t.equal(s.module?.revivable, true)
  t.same(transition(s, { type: 'relay-back' }, 23_000, CONFIG).effects, [{ type: 'reload-game' }])
  // Closes the module handles (or must not be fought) are never revived.
  const kicked = transition(drive([[0, ok]]).state, { type: 'module', connected: false, reason: 'close 1000', revivable: false, lastSeenAt: 0 }, 0, CONFIG).state
  t.equal(transition(kicked, { type: 'relay-back' }, 1e9, CONFIG).effects.length, 0)
})

t.test('takeover: logged out while another login of the user is active → failed at once, no retry', async (t) => {
  const steps: Array<[number, MachineEvent]> = [
    [0, ok],
    [10, { type: 'login-lost', reason: 'Foundry logged the page out', loggedOut: true }],
    [10, { type: 'relogin-due' }],
    [12, { type: 'login-failed', code: 'USER_ALREADY_ACTIVE', message: 'active elsewhere' }]
  ]
  const { state, effects } = drive(steps)
  t.match(state, { status: 'failed', endedAt: 12, statusReason: /^taken over: .*not logging back in/ })
  t.same(effects.at(-1), [{ type: 'finish' }])
  t.equal(drive(steps.slice(0, 2)).state.loggedOut, true)
  // Any other loss: the same code is a plain failed attempt (the session's own stale login is replaced anyway).
  const other = drive([[0, ok], [10, lost], [10, { type: 'relogin-due' }], [12, { type: 'login-failed', code: 'USER_ALREADY_ACTIVE', message: 'x' }]]).state
  t.match(other, { status: 'reconnecting', attempts: 1, loggedOut: false })
  // Logged back in: the flag is cleared.
  t.equal(drive([...steps.slice(0, 3), [12, ok]]).state.loggedOut, false)
})

t.test('the cause table: each permanent cause fails at once with its code and Foundry\'s words; each transient one waits', async (t) => {
  const permanent = Object.entries(CAUSES).filter(([, c]) => c.kind === 'permanent').map(([code]) => code)
  const transient = Object.entries(CAUSES).filter(([, c]) => c.kind === 'transient').map(([code]) => code)
  t.same(permanent.sort(), [
    'ADMIN_PASSWORD_REJECTED', 'FOUNDRY_LICENSE_NOT_SIGNED', 'FOUNDRY_LOGIN_REJECTED', 'FOUNDRY_URL_REFUSED', 'JOIN_FORM_UNKNOWN',
    'MODULE_TOKEN_REFUSED', 'NOT_GAMEMASTER', 'USER_BANNED', 'USER_NOT_FOUND', 'WORLD_LOCKED', 'WORLD_NEEDS_MIGRATION', 'WORLD_NOT_FOUND'
  ], 'what no waiting fixes')
  for (const code of ['FOUNDRY_UNREACHABLE', 'FOUNDRY_ERROR', 'FOUNDRY_TLS_ERROR', 'FOUNDRY_TIMEOUT', 'WORLD_NOT_RUNNING', 'MODULE_NOT_CONNECTED', 'USER_ALREADY_ACTIVE', 'BROWSER_UNAVAILABLE', 'FOUNDRY_LOGIN_LOST']) {
    t.ok(transient.includes(code), `${code} is waited for`)
  }
  t.equal(causeOf('SOMETHING_NEW').kind, 'transient', 'an unknown code is waited for')
  // Under the defaults: no attempt limit, no time bound.
  const config = DEFAULT_MACHINE
  for (const code of permanent) {
    const foundry = `Foundry says no (${code.toLowerCase()})`
    const steps: Array<[number, MachineEvent]> = [[0, ok], [10, lost], [10, { type: 'relogin-due' }], [20, { type: 'login-failed', code, message: foundry }]]
    const { state, effects } = drive(steps, config)
    t.match(state, { status: 'failed', endedAt: 20, attempts: 1, cause: code, nextAttemptAt: null }, `${code}: failed at the first attempt`)
    t.ok(state.statusReason.includes(code) && state.statusReason.includes(foundry), `${code}: the reason carries the code and Foundry's words`)
    t.same(effects.at(-1), [{ type: 'finish' }])
  }
  for (const code of transient) {
    const steps: Array<[number, MachineEvent]> = [[0, ok], [10, lost]]
    let at = 10
    for (let i = 0; i < 50; i++) steps.push([at, { type: 'relogin-due' }], [at += 5, { type: 'login-failed', code, message: 'not yet' }], [at += 60_000, { type: 'tick' }])
    const { state, effects } = drive(steps, config)
    t.match(state, { status: 'reconnecting', attempts: 50, cause: code, statusChangedAt: 10 }, `${code}: still reconnecting after 50 failed attempts (~50 min)`)
    const last = effects.flat().filter((e) => e.type === 'schedule-relogin').at(-1) as { delayMs: number }
    t.equal(last.delayMs, 60_000, `${code}: the next attempt a minute later, at the cap`)
  }
})

t.test('reconnect info: cause, since, attempts so far and the next attempt due', async (t) => {
  let s = drive([[0, ok], [100, lost]]).state
  t.same(reconnectInfo(s), { cause: 'LOGIN_LOST', since: 100, attempts: 0, nextAttemptAt: 100 })
  s = transition(s, { type: 'relogin-due' }, 100, CONFIG).state
  s = transition(s, fail('FOUNDRY_UNREACHABLE'), 150, CONFIG).state
  t.same(reconnectInfo(s), { cause: 'FOUNDRY_UNREACHABLE', since: 100, attempts: 1, nextAttemptAt: 1150 })
  s = transition(s, fail('FOUNDRY_ERROR'), 1200, CONFIG).state
  t.same(reconnectInfo(s), { cause: 'FOUNDRY_ERROR', since: 100, attempts: 2, nextAttemptAt: 3200 })
  s = transition(s, ok, 3300, CONFIG).state
  t.equal(reconnectInfo(s), null, 'none once active')
  t.match(s, { cause: null, nextAttemptAt: null, attempts: 0 })
})

t.test('SESSION_RECONNECT_MAX_MS: the last attempt falls on the bound, then the session fails saying so', async (t) => {
  const config = { ...CONFIG, reloginAttempts: 0, reconnectMaxMs: 10_000 }
  let s = drive([[0, ok], [1000, lost]], config).state
  const delays: number[] = []
  let at = 1000
  for (let i = 0; i < 10 && s.status === 'reconnecting'; i++) {
    s = transition(s, { type: 'relogin-due' }, at, config).state
    const next = transition(s, fail(), at, config)
    s = next.state
    const d = next.effects.find((e) => e.type === 'schedule-relogin') as { delayMs: number } | undefined
    if (d !== undefined) { delays.push(d.delayMs); at += d.delayMs }
  }
  t.same(delays, [1000, 2000, 4000, 3000], '1, 2, 4 s, then the 3 s left of the 10 s (not the 5 s cap)')
  t.match(s, { status: 'failed', endedAt: 11_000, statusReason: /FOUNDRY_UNREACHABLE.*gave up after reconnecting for 10 s \(SESSION_RECONNECT_MAX_MS\)/ })
})

t.test('a first login is never retried, whatever its cause', async (t) => {
  for (const code of ['FOUNDRY_UNREACHABLE', 'FOUNDRY_LOGIN_REJECTED']) {
    t.match(transition(initialState(0), fail(code), 5, DEFAULT_MACHINE), { state: { status: 'failed' }, effects: [{ type: 'finish' }] }, code)
  }
})

t.test('fenced (the fleet: this machine\'s lease is half gone): the page closes, no login until it acts again', async (t) => {
  const fenced: MachineEvent = { type: 'fenced', reason: 'cut off from the fleet' }
  const active = drive([[10, ok]]).state
  const { state, effects } = transition(active, fenced, 50, CONFIG)
  t.match(state, { status: 'reconnecting', statusReason: 'cut off from the fleet: the session waits until it can act again', statusChangedAt: 50, module: { connected: false, since: 50 } })
  t.same(effects, [{ type: 'close-browser' }, { type: 'schedule-relogin', delayMs: CONFIG.reloginBaseMs }], 'the browser closes; relogin-due comes back later (the executor holds logins while fenced)')
  t.match(transition(state, fenced, 60, CONFIG).state, { status: 'reconnecting', statusReason: /^cut off from the fleet/ }, 'fenced again while reconnecting: still reconnecting')
  const starting = transition(initialState(0), fenced, 5, CONFIG)
  t.match(starting.state, { status: 'failed', statusReason: /cut off from the fleet while it was logging in: start it again/, statusChangedAt: 5, endedAt: 5, cause: 'FLEET_UNAVAILABLE' }, 'the start answers 503 FLEET_UNAVAILABLE (start.ts), not that the client cancelled')
  t.same(starting.effects, [{ type: 'finish' }], 'a login in progress is cancelled')
  t.same(transition({ ...active, status: 'ended' }, fenced, 70, CONFIG).effects, [], 'over is over')
})

t.test('the fleet\'s moves through transition(): leave, adopt, over; next() keeps a record\'s other fields', async (t) => {
  const active = drive([[10, ok]]).state
  const leave = transition({ ...active, relogins: 2, attempts: 0 }, { type: 'leave', reason: 'handed over by machine m1', moduleReason: 'its machine is shutting down' }, 50, CONFIG)
  t.match(leave.state, { status: 'reconnecting', statusReason: 'handed over by machine m1', statusChangedAt: 50, cause: 'LOGIN_LOST', nextAttemptAt: null, relogins: 2, module: { connected: false, since: 50, reason: 'its machine is shutting down', revivable: false } })
  t.same(leave.effects, [{ type: 'close-browser' }], 'its page closes')

  const adopt = transition({ ...leave.state, attempts: 3, loggedOut: true }, { type: 'adopt', reason: 'taken over by machine m2' }, 60, CONFIG)
  t.match(adopt.state, { status: 'reconnecting', statusReason: 'taken over by machine m2', statusChangedAt: 60, attempts: 0, nextAttemptAt: 60, loggedOut: false, module: { connected: false, reason: 'not connected: the session is moving to this machine' } })
  t.same(adopt.effects, [], 'the executor tracking it logs it in')

  const over = transition(active, { type: 'over', status: 'failed', reason: 'its machine m1 stopped' }, 70, CONFIG)
  t.match(over.state, { status: 'failed', statusReason: 'its machine m1 stopped', statusChangedAt: 70, endedAt: 70 })
  t.same(over.effects, [], 'nothing runs here to finish')
  const ended = { ...active, status: 'ended' as const, statusReason: 'ended by the client', endedAt: 20 }
  for (const e of [{ type: 'leave', reason: 'x', moduleReason: 'y' }, { type: 'adopt', reason: 'x' }, { type: 'over', status: 'failed', reason: 'x' }] as MachineEvent[]) {
    t.same(transition(ended, e, 80, CONFIG), { state: ended, effects: [] }, `over is over: ${e.type}`)
  }

  const session = { ...active, id: 's1', stage: 'join', clientId: 'foundry-x' }
  const left = next(session, { type: 'leave', reason: 'moving', moduleReason: 'moving' }, 90)
  t.match(left, { id: 's1', clientId: 'foundry-x', stage: null, status: 'reconnecting' }, 'a record keeps its fields; its login stage is over')
  t.match(next(session, { type: 'over', status: 'ended', reason: 'ended by the client (its machine m1 had stopped)' }, 95), { id: 's1', stage: null, status: 'ended', endedAt: 95 })
  t.equal(session.status, 'active', 'the record given is not changed')
})
