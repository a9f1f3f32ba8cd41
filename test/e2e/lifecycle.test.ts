// Sessions that stay alive (issue 4): faults injected into the Foundry
// stand-in and into Chromium, and what each session does about them.
import t from 'tap'
import http from 'node:http'
import { build, expectError } from '../helper.ts'
import { commandLine } from '../../support/proc.ts'
import { GM, WORLD, alive, descendants, endSession, eventually, foundry, listSessions, startSession } from './fixtures.ts'

const FAST = { RELOGIN_BASE_MS: 200, RELOGIN_ATTEMPTS: 3 }

async function sessionOf (app: Parameters<typeof listSessions>[0], id: string): Promise<Record<string, unknown> | undefined> {
  const list = await listSessions(app)
  return [...list.activeSessions, ...list.endedSessions].find((s) => s.id === id)
}

t.test('a Foundry restart: the session logs back in by itself, same sessionId', async (t) => {
  // Patience for 6 s of downtime: attempts after 0, 0.5, 1, 2 and 4 s.
  const { app, logs } = await build(t, { RELOGIN_BASE_MS: 500, RELOGIN_ATTEMPTS: 6 })
  const { standin, relay } = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, res.body)
  const { sessionId, clientId } = res.json()
  const joinsBefore = standin.joins.length

  await standin.restart({ downMs: 6000 })
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'reconnecting', 20_000), 'reconnecting while Foundry is away')
  t.ok(await eventually(async () => {
    const s = await sessionOf(app, sessionId)
    return s?.status === 'active' && s.relogins === 1
  }, 30_000), 'active again')
  const s = await sessionOf(app, sessionId)
  t.match(s, { status: 'active', clientId, relogins: 1, statusReason: /logged back in after/ })
  t.ok(standin.joins.length > joinsBefore, 'it logged in again')
  t.ok(await eventually(() => relay.open().some((c) => c.id === clientId), 10_000), 'the module is connected again')
  t.equal(app.browserPool.health().contexts, 1, 'one browser context, the old one closed')
  t.notOk(logs().includes(GM.password), 'the kept password never reached the log')
})

t.test('a short cut of the live connection needs no new login', async (t) => {
  const { app } = await build(t, FAST)
  const { standin } = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  const { sessionId } = res.json()
  const gameLoads = () => standin.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/game')).length
  const loadsBefore = gameLoads()
  t.ok(standin.state().activeUsers.includes(GM.id), 'the session\'s page holds a live connection')
  standin.cutLiveConnections()
  // socket.io reconnects within a second; Foundry reloads only after 5 s down.
  // The stand-in sees the user go inactive, then active again: the page's
  // socket is back on its own.
  t.ok(await eventually(() => !standin.state().activeUsers.includes(GM.id), 5000), 'the connection was cut')
  t.ok(await eventually(() => standin.state().activeUsers.includes(GM.id), 5000), 'the page reconnected by itself')
  t.match(await sessionOf(app, sessionId), { status: 'active', relogins: 0 })
  t.equal(standin.joins.length, 1, 'no new login')
  t.equal(gameLoads(), loadsBefore, '/game was not loaded again')
})

t.test('the world shut down: relaunched only if the client allowed it', async (t) => {
  const { app } = await build(t, FAST)

  t.test('not allowed: failed after the bounded attempts, with the reason', async (t) => {
    const { standin } = await foundry(t)
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
    const { sessionId } = res.json()
    await standin.shutdownWorld()
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'failed', 30_000), 'failed')
    t.match(await sessionOf(app, sessionId), { status: 'failed', statusReason: /WORLD_NOT_RUNNING.*relaunchWorld.*gave up after 3 attempts/ })
    t.equal(standin.state().activeWorld, null, 'the world was not launched again')
    t.equal(app.browserPool.health().contexts, 0, 'no browser context left')
    const end = await endSession(app, sessionId)
    t.match(end.json(), { success: true, message: 'Failed Foundry session removed' })
    t.same((await listSessions(app)).endedSessions.filter((s) => s.id === sessionId), [])
  })

  t.test('allowed: the world is launched again and the session is back', async (t) => {
    const { standin } = await foundry(t)
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title, body: { relaunchWorld: true } })
    const { sessionId } = res.json()
    await standin.shutdownWorld()
    t.ok(await eventually(async () => {
      const s = await sessionOf(app, sessionId)
      return s?.status === 'active' && s.relogins === 1
    }, 30_000), 'active again')
    t.equal(standin.state().activeWorld, WORLD.id)
    await endSession(app, sessionId)
  })
})

t.test('Chromium killed with SIGKILL: relaunched, sessions logged back in, nothing leaked', async (t) => {
  const { app } = await build(t, FAST)
  const { standin } = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  const { sessionId } = res.json()
  const pid = app.browserPool.pid()!
  const children = descendants(pid)
  process.kill(pid, 'SIGKILL')
  t.ok(await eventually(async () => {
    const s = await sessionOf(app, sessionId)
    return s?.status === 'active' && s.relogins === 1
  }, 30_000), 'the session is active again')
  const newPid = app.browserPool.pid()
  t.ok(newPid !== null && newPid !== pid, 'a new Chromium')
  t.ok(await eventually(() => !alive(pid) && children.every((c) => !alive(c))), 'the killed Chromium left no process behind')
  t.match(await app.inject({ method: 'GET', url: '/health' }).then((r) => r.json()), { status: 'ok', browser: { chromium: 'running' }, sessions: { active: 1 } })
})

t.test('idle timeout and maximum lifetime end sessions cleanly', async (t) => {
  t.test('idle', async (t) => {
    const { app } = await build(t, { SESSION_IDLE_TIMEOUT_MS: 1500 })
    const { standin } = await foundry(t)
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    const { sessionId } = res.json()
    // No API call names it from here on.
    t.ok(await eventually(() => app.sessions.counts().active === 0, 10_000), 'ended')
    t.match(await sessionOf(app, sessionId), { status: 'ended', statusReason: /idle/ })
    t.equal(app.browserPool.health().contexts, 0)
  })
  t.test('lifetime, even while listed', async (t) => {
    const { app } = await build(t, { SESSION_MAX_LIFETIME_MS: 4000 })
    const { standin } = await foundry(t)
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    const { sessionId } = res.json()
    t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'ended', 15_000), 'ended')
    t.match(await sessionOf(app, sessionId), { statusReason: /maximum session lifetime/ })
    t.equal(app.browserPool.health().contexts, 0)
  })
})

t.test('Foundry faults during login: down, slow, 500', async (t) => {
  const { app } = await build(t, { NAVIGATION_TIMEOUT_MS: 3000, GAME_READY_TIMEOUT_MS: 2000 })

  t.test('slow game → 504 naming the stage', async (t) => {
    const { standin } = await foundry(t, { gameReadyDelayMs: 30_000 })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    expectError(t, res, 504, 'FOUNDRY_TIMEOUT')
    t.match(res.json(), { error: /loading the game: waited for game\.ready on \/game/, stage: 'game-load', page: '/game' })
  })

  t.test('HTTP 500 → 502', async (t) => {
    const server = http.createServer((_req, res) => { res.writeHead(500).end('Internal Server Error') })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { server.closeAllConnections(); server.close() })
    const res = await startSession(app, { foundryUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, username: GM.name, password: 'x' })
    expectError(t, res, 502, 'FOUNDRY_ERROR')
    t.match(res.json().error, /HTTP 500/)
  })

  t.test('Foundry going down in the middle of a login', async (t) => {
    const { standin } = await foundry(t, { gameReadyDelayMs: 1500 })
    const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.ok(await eventually(async () => (await listSessions(app)).pendingSessions[0]?.stage === 'game-load'))
    await standin.close()
    const res = await pending
    t.ok([502, 504].includes(res.statusCode), `a 502 or 504, not a crash: ${res.body}`)
    t.equal(app.browserPool.health().contexts, 0)
  })

  // The page has the world's data, so game.ready still comes (and the
  // module, whose relay is elsewhere, still connects): not a success.
  t.test('Foundry going down after the world\'s data arrived, before game.ready', async (t) => {
    const { standin } = await foundry(t, { gameReadyDelayMs: 1500 })
    const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.ok(await eventually(() => standin.worldData.includes(GM.id)), 'the page has the world\'s data')
    await standin.close()
    const res = await pending
    expectError(t, res, 502, 'FOUNDRY_UNREACHABLE')
    t.match(res.json().error, /Foundry closed the game page's connection/)
    t.equal(app.browserPool.health().contexts, 0)
  })

  t.same((await listSessions(app)).activeSessions, [], 'no session was left behind')
})

t.test('processes: none outlives its session, none outlives the service', async (t) => {
  const { app } = await build(t, { MAX_CONCURRENT_LOGINS: 4 })
  const players = [1, 2, 3, 4].map((i) => ({ id: `pLaYeR${i}xxxxxxxxx`, name: `Player ${i}`, role: 1 as const, password: `player-${i}-pw` }))
  const { standin } = await foundry(t, { worlds: [{ ...WORLD, users: [GM, ...players] }] })
  const pid = app.browserPool.pid()!
  // The tab Chromium opens at launch is closed by the pool; its renderer
  // takes a moment to exit. The baseline is Chromium without any renderer.
  const renderers = (): number => descendants(pid).filter((p) => commandLine(p).includes('--type=renderer')).length
  t.ok(await eventually(() => renderers() === 0), 'no renderer before the first session')
  const baseline = descendants(pid).length
  for (let round = 0; round < 3; round++) {
    const started = await Promise.all(players.map(async (p) => await startSession(app, {
      foundryUrl: standin.url, username: p.name, password: p.password, body: { loginIfActive: true, requireModule: false }
    })))
    t.same(started.map((r) => r.statusCode), [200, 200, 200, 200], `round ${round}: four sessions`)
    t.ok(renderers() >= 4, `a renderer per session (${renderers()})`)
    for (const r of started) await endSession(app, r.json().sessionId)
    t.ok(await eventually(() => descendants(pid).length <= baseline), `round ${round}: back to the baseline process count`)
  }
  await startSession(app, { foundryUrl: standin.url, username: players[0].name, password: players[0].password, body: { loginIfActive: true, requireModule: false } })
  const all = [pid, ...descendants(pid)]
  await app.close()
  t.ok(await eventually(() => all.every((p) => !alive(p))), 'no Chromium process outlives the service')
})
