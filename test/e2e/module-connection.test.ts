// The REST API module's relay connection as part of the session's state
// (issue 8 §3), and a second login of the same user taking the session over
// (issue 8 §2): real Chromium against the Foundry and relay stand-ins, faults
// injected at the relay, and what GET /session then says.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { hashKey } from '../../lib/access/api-keys.ts'
import type { SessionEvent } from '../../lib/session/index.ts'
import { fileBrowser, freshPage, waitReady } from '../../support/foundry/browser.ts'
import { API_KEY, build } from '../helper.ts'
import { GM, eventually, foundry, listSessions, startSession } from './fixtures.ts'

interface Listed { id: string, status: string, statusReason: string, clientId: string, module: { connected: boolean, since: string, reason: string } }

async function listed (app: FastifyInstance, id: string): Promise<Listed | undefined> {
  const list = await listSessions(app)
  return [...list.activeSessions, ...list.endedSessions].find((s) => s.id === id) as Listed | undefined
}

const gameLoads = (standin: { requests: Array<{ method: string, path: string }> }): number =>
  standin.requests.filter((r) => r.method === 'GET' && r.path === '/game').length

t.test('the list follows the module\'s relay connection', async (t) => {
  const { app, logs } = await build(t, { MODULE_REVIVE_AFTER_MS: 1000 })

  t.test('kicked with 4004 (id given to another browser): shown at once; the module\'s own reconnect is observed, not fought', async (t) => {
    // The module's first retry comes after 2 × 1.5 s: time enough to see it down.
    const { standin, relay } = await foundry(t, { moduleReconnectBaseMs: 1500 })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.equal(res.statusCode, 200, res.body)
    const { sessionId, clientId } = res.json()
    const first = await listed(app, sessionId)
    t.match(first, { status: 'active', module: { connected: true, reason: 'connected to its relay' } })
    const loads = gameLoads(standin)

    const events: SessionEvent[] = []
    const off = await app.sessions.subscribe(hashKey(API_KEY), sessionId, (e) => { events.push(e) })
    t.teardown(off)
    relay.kick(relay.open().find((c) => c.id === clientId)!, 4004, 'Client ID connected elsewhere')
    t.ok(await eventually(async () => (await listed(app, sessionId))?.module.connected === false, 10_000), 'listed as not connected within seconds')
    t.match(await listed(app, sessionId), { status: 'active', clientId, module: { connected: false, reason: /close 4004/ } })
    t.ok(await eventually(async () => (await listed(app, sessionId))?.module.connected === true, 15_000), 'connected again by the module itself')
    const back = await listed(app, sessionId)
    t.ok(Date.parse(back!.module.since) > Date.parse(first!.module.since), 'since the reconnect')
    t.equal(relay.connections.filter((c) => c.id === clientId).length, 2, 'one reconnect, by the module')
    t.equal(gameLoads(standin), loads, 'the session did not reload the game')
    const seen = events.filter((e) => e.type === 'module')
    t.match(seen[0], { type: 'module', connected: false, clientId, reason: /close 4004/ }, 'an event when it went')
    t.match(seen.at(-1), { type: 'module', connected: true, clientId, reason: 'connected to its relay' }, 'and when it came back')
  })

  t.test('closed with 1000 (replaced): shown, and the session leaves it alone', async (t) => {
    const { standin, relay } = await foundry(t)
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    const { sessionId, clientId } = res.json()
    relay.kick(relay.open().find((c) => c.id === clientId)!, 1000, 'Replaced by a new connection')
    t.ok(await eventually(async () => (await listed(app, sessionId))?.module.connected === false, 10_000), 'listed as not connected within seconds')
    t.match(await listed(app, sessionId), {
      status: 'active',
      module: { connected: false, reason: /close 1000.*does not reconnect by itself/ }
    })
  })

  t.test('relay down longer than the module retries: shown as unreachable; brought back by a reload once the relay answers', async (t) => {
    // The module gives up after 2 retries (0.4 s and 0.8 s after the drop).
    const { standin, relay } = await foundry(t, { moduleReconnectMaxAttempts: 2, moduleReconnectBaseMs: 200 })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    const { sessionId, clientId } = res.json()
    const loads = gameLoads(standin)
    await relay.down()
    t.ok(await eventually(async () => (await listed(app, sessionId))?.module.connected === false, 10_000), 'listed as not connected within seconds')
    t.match(await listed(app, sessionId), { status: 'active', module: { connected: false, reason: /unreachable \(close 1006\)/ } })
    // The fault: down for 3 s, well past the module's last retry.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const before = relay.connections.length
    await relay.up()
    t.ok(await eventually(async () => (await listed(app, sessionId))?.module.connected === true, 20_000), 'connected again')
    t.ok(gameLoads(standin) > loads, 'the session reloaded the game page')
    t.ok(relay.connections.slice(before).some((c) => c.id === clientId && c.closedAt === undefined), 'the module is connected at the relay')
    t.match(await listed(app, sessionId), { status: 'active', relogins: 0 })
    t.equal(logs().split('\n').filter((l) => l.includes(sessionId) && l.includes('reloading the game page')).length, 1, 'one reload')
  })

  t.test('relay restart within the module\'s retries: it reconnects by itself, no reload', async (t) => {
    // Revival only after a minute of quiet, as by default: the module's own retries come first.
    const { app } = await build(t, { MODULE_REVIVE_AFTER_MS: 60_000 })
    const { standin, relay } = await foundry(t, { moduleReconnectBaseMs: 500 })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    const { sessionId, clientId } = res.json()
    const loads = gameLoads(standin)
    await relay.down()
    t.ok(await eventually(async () => (await listed(app, sessionId))?.module.connected === false, 10_000), 'listed as not connected')
    await relay.up()
    t.ok(await eventually(async () => (await listed(app, sessionId))?.module.connected === true, 15_000), 'connected again')
    t.ok(relay.open().some((c) => c.id === clientId), 'at the relay')
    t.equal(gameLoads(standin), loads, 'no reload: the module came back by itself')
  })
})

t.test('a second login of the same user takes the session over: noticed, said, not fought', async (t) => {
  const { app } = await build(t, { RELOGIN_BASE_MS: 200, RELOGIN_ATTEMPTS: 5 })
  const { standin } = await foundry(t, { secondLoginReplaces: true })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, res.body)
  const { sessionId } = res.json()

  // A human logs in as the same user in another browser, as Foundry's page does.
  const browser = await fileBrowser(t)
  const { page } = await freshPage(t, browser)
  await page.goto(new URL('join', standin.url).href)
  const posted = await page.evaluate(async (id: string, password: string) => {
    const r = await fetch('join', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userid: id, password, action: 'join' }) })
    return r.status
  }, GM.id, GM.password)
  t.equal(posted, 200)
  await page.goto(new URL('game', standin.url).href)
  await waitReady(page)
  const takenAt = Date.now()

  t.ok(await eventually(async () => (await listed(app, sessionId))?.status === 'failed', 20_000), 'the session failed')
  t.ok(Date.now() - takenAt < 20_000, 'within seconds')
  t.match(await listed(app, sessionId), { status: 'failed', statusReason: /taken over.*not logging back in/ })
  t.same(standin.joins.map((j) => j.ok), [true, true], 'no login after the human\'s: the session did not fight back')
  t.ok(await page.evaluate(() => (window as unknown as { game?: { ready?: boolean } }).game?.ready === true), 'the human stays in the game')
  t.equal(app.browserPool.health().contexts, 0, 'the session\'s browser context is closed')
})
