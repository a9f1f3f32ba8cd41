// Real outages (issue 17): Foundry stopped for many backoff steps, answering
// 502 behind a proxy, hanging, its world shut down, its password changed
// meanwhile. Every delay is shortened by configuration (a 0.5 s backoff cap),
// not by a mocked clock; the outage is long against that cap (counted in
// backoff steps, not in seconds). Real Chromium against the stand-in; the
// pages Chromium holds are counted meanwhile. Tests whose configuration is
// the same share a service, one after another; each ends its session, and
// checks the pages and contexts that service holds, itself.
import t from 'tap'
import { build } from '../helper.ts'
import { GM, WORLD, endSession, eventually, foundry, listSessions, startSession } from './fixtures.ts'
import type { SessionEvent } from '../../lib/session/types.ts'

const CAP_MS = 500
/** How many failed attempts Foundry stays away for (OUTAGE_STEPS to make it longer). */
const OUTAGE_STEPS = Number(process.env.OUTAGE_STEPS ?? 20)
const FAST = { RELOGIN_BASE_MS: 100, RELOGIN_MAX_DELAY_MS: CAP_MS, NAVIGATION_TIMEOUT_MS: 4000 }

type Listed = Record<string, any>

async function sessionOf (app: Parameters<typeof listSessions>[0], id: string): Promise<Listed | undefined> {
  const list = await listSessions(app)
  return [...list.activeSessions, ...list.endedSessions].find((s) => s.id === id)
}

/**
 * Foundry back up: the waiting session's next probe (GET /api/status) comes
 * within one step (`stepMs`, the longest delay between two) of its return.
 */
async function upAndProbed (t: { ok: (ok: unknown, message: string) => unknown }, standin: Awaited<ReturnType<typeof foundry>>['standin'], stepMs: number): Promise<void> {
  const probesBefore = standin.requests.length
  const back = Date.now()
  await standin.up()
  let firstProbe = 0
  t.ok(await eventually(() => {
    if (standin.requests.slice(probesBefore).some((r) => r.path.endsWith('/api/status'))) firstProbe = Date.now()
    return firstProbe > 0
  }, stepMs + 5000), 'Foundry was probed again after its return')
  t.ok(firstProbe - back <= stepMs + 1500, `within one step of Foundry's return (${firstProbe - back} ms, step ${stepMs} ms)`)
}

/** After the test: its session ended, its browser context closed (the next test counts pages and contexts from zero). */
function endAfter (t: { teardown: (fn: () => unknown) => void }, app: Awaited<ReturnType<typeof build>>['app'], sessionId: string): void {
  t.teardown(async () => {
    await endSession(app, sessionId)
    await eventually(() => app.browserPool.health().contexts === 0, 10_000)
  })
}

// Four at once: two groups of tests that share a service, one after
// another within the group, and the two tests with a service of their own.
// Most of their time is waiting out backoff steps.
t.jobs = 4

t.test('one service: Foundry away for many steps, the world shut down, the password changed meanwhile', async (t) => {
  const shared = await build(t, FAST)
  t.test('Foundry away for many backoff steps: reconnecting all along, no page held, back within a step of its return', async (t) => {
    const { app, logs } = shared
    const { standin, relay } = await foundry(t)
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.equal(res.statusCode, 200, res.body)
    const { sessionId, clientId } = res.json()
    endAfter(t, app, sessionId)
    const events: SessionEvent[] = []
    app.sessions.onEvent((e) => { if (e.sessionId === sessionId) events.push(e) })
    t.equal(app.browserPool.pages(), 1, 'one page while active')

    // First stopped (connections refused), then a proxy answering 502 with Foundry gone behind it.
    await standin.down('refuse')
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 1, 15_000), 'reconnecting, a first attempt failed')
    // The lost page's context closes as the first probe runs.
    t.ok(await eventually(() => app.browserPool.pages() === 0, 5000), 'the lost page closed')
    const seen = { polls: 0, causes: new Set<string>(), maxAttempts: 0, pagesHeld: 0, contextsHeld: 0, notReconnecting: [] as string[], noNext: 0 }
    // Away for OUTAGE_STEPS failed attempts (refused for the first half, 502 for
    // the rest), however long the machine takes over them; the bound is only
    // there to end a test that never gets there.
    const deadline = Date.now() + 120_000
    let switched = false
    while (seen.maxAttempts < OUTAGE_STEPS && Date.now() < deadline) {
      if (!switched && seen.maxAttempts >= OUTAGE_STEPS / 2) { await standin.down('502'); switched = true }
      const s = await sessionOf(app, sessionId)
      seen.polls++
      if (s?.status !== 'reconnecting') seen.notReconnecting.push(String(s?.status))
      else {
        seen.causes.add(s.reconnect.cause)
        seen.maxAttempts = Math.max(seen.maxAttempts, s.reconnect.attempts)
        if (s.reconnect.nextAttemptAt === null) seen.noNext++
        t.ok(Date.parse(s.reconnect.nextAttemptAt) - Date.now() <= CAP_MS + 100, 'the next attempt is due within the cap')
      }
      seen.pagesHeld = Math.max(seen.pagesHeld, app.browserPool.pages())
      seen.contextsHeld = Math.max(seen.contextsHeld, app.browserPool.health().contexts)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.same(seen.notReconnecting, [], `reconnecting at every one of ${seen.polls} looks`)
    t.same([...seen.causes].sort(), ['FOUNDRY_ERROR', 'FOUNDRY_UNREACHABLE'], 'the cause, as it changed: refused, then HTTP 502')
    t.ok(seen.maxAttempts >= OUTAGE_STEPS, `many backoff steps (${seen.maxAttempts} attempts, cap ${CAP_MS} ms)`)
    t.equal(seen.noNext, 0, 'the next attempt was always known')
    t.equal(seen.pagesHeld, 0, 'no page held while Foundry was away')
    t.equal(seen.contextsHeld, 0, 'no browser context either')
    const attemptEvents = events.filter((e) => e.type === 'status' && e.status === 'reconnecting' && e.reconnect !== undefined)
    t.ok(attemptEvents.length >= seen.maxAttempts, 'a status event per failed attempt')
    t.match(attemptEvents.at(-1), { reconnect: { cause: 'FOUNDRY_ERROR', attempts: seen.maxAttempts, since: Number } })

    await upAndProbed(t, standin, CAP_MS)
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'active', 30_000), 'active again')
    t.match(await sessionOf(app, sessionId), { sessionId, clientId, status: 'active', relogins: 1, statusReason: /logged back in after/ })
    t.equal((await sessionOf(app, sessionId))?.reconnect, undefined, 'no reconnect info once active')
    t.ok(await eventually(() => relay.open().some((c) => c.id === clientId), 10_000), 'the module is connected again')
    t.equal(app.browserPool.pages(), 1, 'one page again')
    t.notOk(logs().includes(GM.password), 'the password never reached the log')
  })

  t.test('the world shut down and relaunching not allowed: waited for until a Gamemaster launches it', async (t) => {
    const { app } = shared
    const { standin } = await foundry(t)
    const { sessionId, clientId } = (await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })).json()
    endAfter(t, app, sessionId)
    await standin.shutdownWorld()
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 3, 30_000), 'several attempts')
    t.match(await sessionOf(app, sessionId), { status: 'reconnecting', reconnect: { cause: 'WORLD_NOT_RUNNING' }, statusReason: /WORLD_NOT_RUNNING.*relaunchWorld/ })
    t.equal(standin.state().activeWorld, null, 'the session did not launch it')
    t.equal(app.browserPool.pages(), 0, 'no page held while no world runs')
    await standin.launchWorld(WORLD.id)
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'active', 30_000), 'active once a Gamemaster launched it')
    t.match(await sessionOf(app, sessionId), { clientId })
  })

  t.test('the password changed in Foundry during an outage: the first login after it fails FOUNDRY_LOGIN_REJECTED and the session ends', async (t) => {
    const { app, logs } = shared
    const { standin } = await foundry(t)
    const { sessionId } = (await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })).json()
    endAfter(t, app, sessionId)
    const events: SessionEvent[] = []
    app.sessions.onEvent((e) => { if (e.sessionId === sessionId) events.push(e) })
    await standin.down('refuse')
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 3, 20_000), 'waiting for Foundry')
    const newPassword = 'changed-during-the-outage-Pw1'
    standin.setPassword(GM.id, newPassword)
    const joinsBefore = standin.joins.length
    await standin.up()
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'failed', 30_000), 'failed')
    t.equal(standin.joins.length - joinsBefore, 1, 'one login tried, not retried')
    t.match(await sessionOf(app, sessionId), { status: 'failed', statusReason: /FOUNDRY_LOGIN_REJECTED.*JOIN\.ErrorInvalidPassword.*not tried again/ })
    t.match(events.at(-1), { type: 'status', status: 'failed', previous: 'reconnecting', code: 'FOUNDRY_LOGIN_REJECTED' }, 'a failed event with the code')
    t.equal(app.browserPool.health().contexts, 0, 'its browser context closed')
    t.notOk(logs().includes(GM.password) || logs().includes(newPassword), 'no password in the log')
  })
})

t.test('another service: Foundry hanging, and what no waiting fixes', async (t) => {
  const shared = await build(t, FAST)
  t.test('Foundry hanging (connections accepted, never answered): FOUNDRY_TIMEOUT, waited for', async (t) => {
    const { app } = shared
    const { standin } = await foundry(t)
    const { sessionId } = (await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })).json()
    endAfter(t, app, sessionId)
    // Stopped first (the page notices), then a host that accepts and never answers.
    await standin.down('refuse')
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 1, 15_000), 'reconnecting')
    await standin.down('hang')
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.cause === 'FOUNDRY_TIMEOUT', 30_000), 'the probe timed out')
    t.match(await sessionOf(app, sessionId), { status: 'reconnecting', statusReason: /FOUNDRY_TIMEOUT.*did not answer within 4 s/ })
    t.equal(app.browserPool.pages(), 0, 'no page held')
    await standin.up()
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'active', 30_000), 'active again')
  })

  t.test('what no waiting fixes, met after an outage: failed at the first login, with its code and Foundry\'s words', async (t) => {
    const cases: Array<{ name: string, change: (s: Awaited<ReturnType<typeof foundry>>['standin']) => void, code: string, words: RegExp }> = [
      { name: 'licence no longer signed', change: (s) => { s.setEulaSigned(false) }, code: 'FOUNDRY_LICENSE_NOT_SIGNED', words: /licence page/ },
      { name: 'the user deleted', change: (s) => { s.removeUser(GM.id) }, code: 'USER_NOT_FOUND', words: /Gamemaster/ }
    ]
    const { app } = shared
    for (const c of cases) {
      t.test(c.name, async (t) => {
        const { standin } = await foundry(t)
        const { sessionId } = (await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })).json()
        endAfter(t, app, sessionId)
        await standin.down('refuse')
        t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 1, 20_000), 'waiting for Foundry')
        c.change(standin)
        await standin.up()
        t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'failed', 30_000), 'failed')
        const s = await sessionOf(app, sessionId)
        t.match(s?.statusReason, new RegExp(`\\(${c.code}\\)`), 'with its code')
        t.match(s?.statusReason, c.words, 'and Foundry\'s words')
        t.match(s?.statusReason, /not tried again/)
        t.equal(app.browserPool.health().contexts, 0)
      })
    }
  })
})

t.test('the relay down when Foundry comes back: MODULE_NOT_CONNECTED is waited for, active once the relay answers', async (t) => {
  const { app } = await build(t, { ...FAST, MODULE_CONNECT_TIMEOUT_MS: 3000 })
  const { standin, relay } = await foundry(t)
  const { sessionId, clientId } = (await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })).json()
  await relay.down()
  await standin.down('refuse')
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 1, 20_000), 'reconnecting')
  await standin.up()
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.cause === 'MODULE_NOT_CONNECTED', 30_000), 'Foundry is back, the relay is not: MODULE_NOT_CONNECTED')
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 3, 30_000), 'and it keeps trying')
  t.equal((await sessionOf(app, sessionId))?.status, 'reconnecting')
  await relay.up()
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'active', 30_000), 'active once the relay answers')
  t.ok(await eventually(() => relay.open().some((c) => c.id === clientId), 10_000), 'the module is connected')
})

t.test('Foundry away for longer than the login backoff would wait: probed every FOUNDRY_PROBE_MAX_MS, back within a probe step of its return', async (t) => {
  // Logins back off to a minute (the default cap); probes that find Foundry away, to PROBE_MS.
  const PROBE_MS = 500
  const { app } = await build(t, { RELOGIN_BASE_MS: 100, FOUNDRY_PROBE_MAX_MS: PROBE_MS, NAVIGATION_TIMEOUT_MS: 4000 })
  const { standin, relay } = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, res.body)
  const { sessionId, clientId } = res.json()
  endAfter(t, app, sessionId)
  await standin.down('refuse')
  // Twelve failed attempts: backing off as logins do, the twelfth would come
  // 100 ms × (2^12 - 1) ≈ 7 min after the first.
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.reconnect?.attempts >= 12, 30_000), 'twelve probes found Foundry away')
  const waiting = await sessionOf(app, sessionId)
  t.match(waiting, { status: 'reconnecting', reconnect: { cause: 'FOUNDRY_UNREACHABLE' } })
  t.ok(Date.parse(waiting?.reconnect?.nextAttemptAt) - Date.now() <= PROBE_MS + 100, 'the next probe is due within the probe cap')
  t.equal(app.browserPool.pages(), 0, 'no page held meanwhile')
  await upAndProbed(t, standin, PROBE_MS)
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'active', 30_000), 'active again')
  t.match(await sessionOf(app, sessionId), { sessionId, clientId, relogins: 1 })
  t.ok(await eventually(() => relay.open().some((c) => c.id === clientId), 10_000), 'the module is connected again')
})
