// End to end through real Chromium against the Foundry stand-in and its
// relay: start, list, end, and every login failure the API documents.
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { OTHER_KEY, build, expectError } from '../helper.ts'
import {
  BANNED, GM, GM2, OTHER_WORLD, foundry as foundryOf, PLAYER, WORLD, alive, descendants, endSession, eventually, listSessions, startSession
} from './fixtures.ts'

/** This file's worlds: WORLD running, OTHER_WORLD on the setup page. */
async function foundry (t: Parameters<typeof foundryOf>[0], opts: Parameters<typeof foundryOf>[1] = {}) {
  return await foundryOf(t, { worlds: [WORLD, OTHER_WORLD], ...opts })
}

// One service (one Chromium) for the tests with the default settings that
// look only at their own stand-in, replies and sessions, and end the sessions
// they start. Those that count every session or context of the service (the
// first, the cancelled start) or close it keep their own.
const shared = await build(t)

t.test('start, list and end a session', async (t) => {
  const { app, logs } = await build(t)
  const { standin, relay } = await foundry(t)
  const pid = app.browserPool.pid()
  t.ok(pid !== null, 'Chromium runs')
  const baseline = descendants(pid!).length

  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.match(body, { success: true, message: 'Foundry session started successfully', sessionId: /^[0-9a-f-]{36}$/, clientId: `foundry-${GM.id}` })

  // The clientId is the one the module announced to its relay.
  const conn = relay.connections.find((c) => c.id === body.clientId)
  t.ok(conn, 'the relay saw the module connect with that id')
  t.equal(conn?.query.worldId, WORLD.id)

  // The login went the way Foundry's own page does it.
  const join = standin.requests.find((r) => r.method === 'POST' && r.path.endsWith('/join'))
  t.match(join, { contentType: /application\/json/, body: { userid: GM.id, action: 'join' }, status: 200 })
  t.same(standin.joins.map((j) => j.ok), [true], 'one login')

  const list = await listSessions(app)
  t.equal(list.activeSessions.length, 1)
  t.same(list.pendingSessions, [])
  t.match(list.activeSessions[0], {
    id: body.sessionId,
    sessionId: body.sessionId,
    clientId: `foundry-${GM.id}`,
    status: 'active',
    worldId: WORLD.id,
    worldTitle: WORLD.title,
    systemId: 'dnd5e',
    systemTitle: WORLD.system.title,
    systemVersion: '5.0.4',
    foundryVersion: '13.351',
    foundryUrl: standin.url,
    username: GM.name,
    userId: GM.id,
    instanceId: 'local',
    idleMinutes: 0,
    customName: '',
    lastActivity: Number,
    startedAt: String
  })

  t.same((await listSessions(app, OTHER_KEY)).activeSessions, [], 'another key sees nothing')
  expectError(t, await endSession(app, body.sessionId, OTHER_KEY), 404, 'SESSION_NOT_FOUND')
  t.equal((await listSessions(app)).activeSessions.length, 1, "another key's end left the session running")

  t.equal(app.browserPool.health().contexts, 1)
  t.ok(descendants(pid!).length > baseline, 'the session has its own renderer')

  const end = await endSession(app, body.sessionId)
  t.equal(end.statusCode, 200)
  t.match(end.json(), { success: true, status: 'ok', message: 'Foundry session terminated' })
  const after = await listSessions(app)
  t.same([after.activeSessions, after.pendingSessions], [[], []])
  t.match(after.endedSessions, [{ id: body.sessionId, status: 'ended', statusReason: 'ended by the client', endedAt: String }], 'listed as ended, with the reason')
  t.equal(app.browserPool.health().contexts, 0, 'its browser context is closed')
  t.ok(await eventually(() => descendants(pid!).length <= baseline), 'its renderer process exited')
  t.ok(await eventually(() => relay.connections.find((c) => c.id === body.clientId)?.closedAt !== undefined), 'the module connection closed with the page')
  expectError(t, await endSession(app, body.sessionId), 404, 'SESSION_NOT_FOUND')

  t.notOk(logs().includes(GM.password), 'the password never reached the log')
})

t.test('every client encryption starts a session', async (t) => {
  const { app, logs } = shared
  const { standin } = await foundry(t)
  for (const encryption of ['node-sha1', 'webcrypto-sha1', 'node-sha256', 'webcrypto-sha256'] as const) {
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, encryption })
    t.equal(res.statusCode, 200, `${encryption}: ${res.body}`)
    t.equal(res.json().clientId, `foundry-${GM.id}`)
    t.equal((await endSession(app, res.json().sessionId)).statusCode, 200)
  }
  t.notOk(logs().includes(GM.password))
})

t.test('a world is launched from the setup page when none runs', async (t) => {
  const { app } = shared
  const { standin } = await foundry(t, { activeWorld: null })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM2.name, password: GM2.password, world: 'curse of strahd' })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().clientId, `foundry-${GM2.id}`)
  t.equal(standin.state().activeWorld, OTHER_WORLD.id)
  const launch = standin.requests.find((r) => r.method === 'POST' && r.path.endsWith('/setup'))
  t.match(launch, { body: { action: 'launchWorld', world: OTHER_WORLD.id }, status: 200 })
  const { sessionId } = res.json()
  t.match((await listSessions(app)).activeSessions.find((s) => s.id === sessionId), { worldTitle: OTHER_WORLD.title, worldName: 'curse of strahd' })
  t.equal((await endSession(app, sessionId)).statusCode, 200)
})

t.test('login failures are explained', async (t) => {
  const { app, logs } = await build(t, { MODULE_CONNECT_TIMEOUT_MS: 3000 })
  const { standin } = await foundry(t)
  const base = { foundryUrl: standin.url }

  t.test('wrong password → 422 with Foundry\'s reason', async (t) => {
    const res = await startSession(app, { ...base, username: GM.name, password: 'not-the-password-123' })
    expectError(t, res, 422, 'FOUNDRY_LOGIN_REJECTED')
    t.match(res.json(), { error: /rejected the password for user "Gamemaster".*JOIN\.ErrorInvalidPassword/, stage: 'join', page: '/join' })
    t.notOk(res.body.includes('not-the-password-123'), 'the password is not echoed')
  })

  t.test('unknown user → 404', async (t) => {
    const res = await startSession(app, { ...base, username: 'Nobody Here', password: 'x' })
    expectError(t, res, 404, 'USER_NOT_FOUND')
    t.match(res.json().error, /"Nobody Here" does not exist/)
    t.notOk(res.body.includes(PLAYER.name), 'other users are not listed')
  })

  t.test('user names match case-insensitively', async (t) => {
    const res = await startSession(app, { ...base, username: 'gamemaster', password: GM.password })
    t.equal(res.statusCode, 200, res.body)
    await endSession(app, res.json().sessionId)
  })

  t.test('banned user → 403', async (t) => {
    expectError(t, await startSession(app, { ...base, username: BANNED.name, password: BANNED.password }), 403, 'USER_BANNED')
  })

  t.test('a player is not a Gamemaster → 409', async (t) => {
    const res = await startSession(app, { ...base, username: PLAYER.name, password: PLAYER.password })
    expectError(t, res, 409, 'NOT_GAMEMASTER')
    t.match(res.json().error, /not a Gamemaster/)
  })

  t.test('another world is running → 409 naming it', async (t) => {
    const res = await startSession(app, { ...base, username: GM.name, password: GM.password, world: OTHER_WORLD.title })
    expectError(t, res, 409, 'WORLD_MISMATCH')
    t.match(res.json().error, /"Lost Mine of Phandelver", not "Curse of Strahd"/)
  })

  t.test('all failed logins left no session and no browser context', async (t) => {
    const list = await listSessions(app)
    t.same([list.activeSessions, list.pendingSessions], [[], []])
    t.ok(list.endedSessions.every((s) => s.status === 'failed' || s.statusReason === 'ended by the client'), 'failed logins are listed as failed')
    t.equal(app.browserPool.health().contexts, 0)
  })

  t.test('no password reached the log', async (t) => {
    const all = logs()
    for (const secret of [GM.password, PLAYER.password, BANNED.password, 'not-the-password-123']) t.notOk(all.includes(secret), secret)
  })
})

t.test('world not found lists the worlds', async (t) => {
  const { app } = shared
  const { standin } = await foundry(t, { activeWorld: null })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: 'Tomb of Annihilation' })
  expectError(t, res, 404, 'WORLD_NOT_FOUND')
  t.match(res.json(), { error: /"Lost Mine of Phandelver", "Curse of Strahd"/, stage: 'world-launch', page: '/setup' })
  const none = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  expectError(t, none, 409, 'WORLD_NOT_RUNNING')
})

t.test('the module does not connect → 504', async (t) => {
  const { app } = await build(t, { MODULE_CONNECT_TIMEOUT_MS: 2500 })

  t.test('the module never connects → 504 that explains why', async (t) => {
    const { standin } = await foundry(t, { worlds: [{ ...WORLD, moduleActive: false }] })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    expectError(t, res, 504, 'MODULE_NOT_CONNECTED')
    t.match(res.json(), { error: /module is not active in this world.*another Gamemaster/, stage: 'module-connection', page: '/game' })
    t.equal(app.browserPool.health().contexts, 0)
  })

  t.test('another GM holds the module connection (v2 primary GM rule) → 504', async (t) => {
    const lowerGm = { id: 'AAAAAAAAAAAAAAAA', name: 'Other GM', role: 4 as const, password: 'x' }
    const { standin, relay } = await foundry(t, { worlds: [{ ...WORLD, users: [...WORLD.users, lowerGm] }], activeUserIds: [lowerGm.id] })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    expectError(t, res, 504, 'MODULE_NOT_CONNECTED')
    t.equal(relay.connections.length, 0, 'the module did not connect for a non-primary GM')
  })
})

t.test('unreachable, not Foundry, and silent servers', async (t) => {
  const { app } = await build(t, { NAVIGATION_TIMEOUT_MS: 2000 })
  const listen = async (handler: http.RequestListener) => {
    const server = http.createServer(handler)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { server.closeAllConnections(); server.close() })
    return `http://127.0.0.1:${(server.address() as { port: number }).port}/`
  }
  const notFoundry = await listen((_req, res) => { res.setHeader('content-type', 'text/html'); res.end('<h1>It works!</h1>') })
  const silent = await listen(() => {})

  const res1 = await startSession(app, { foundryUrl: notFoundry, username: GM.name, password: 'x' })
  expectError(t, res1, 502, 'NOT_FOUNDRY')
  t.match(res1.json(), { error: /not a Foundry VTT server/, stage: 'reach' })

  const t0 = Date.now()
  const res2 = await startSession(app, { foundryUrl: silent, username: GM.name, password: 'x' })
  expectError(t, res2, 504, 'FOUNDRY_TIMEOUT')
  t.ok(Date.now() - t0 < 10_000, 'bounded by the navigation timeout')

  // A port nothing listens on: bind one, then free it.
  const unused = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const res3 = await startSession(app, { foundryUrl: `http://127.0.0.1:${unused}/`, username: GM.name, password: 'x' })
  expectError(t, res3, 502, 'FOUNDRY_UNREACHABLE')
  t.match(res3.json().error, /could not be reached \(ERR_CONNECTION_REFUSED\)/)
  t.equal(app.browserPool.health().contexts, 0)
})

t.test('a session still starting is listed and can be cancelled', async (t) => {
  const { app } = await build(t)
  const { standin } = await foundry(t, { gameReadyDelayMs: 60_000 })
  const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  let listed: Record<string, unknown> | undefined
  t.ok(await eventually(async () => {
    listed = (await listSessions(app)).pendingSessions[0]
    return listed?.stage === 'game-load'
  }), 'listed as pending while the game loads')
  t.match(listed, { id: String, status: 'pending', foundryUrl: standin.url, username: GM.name, startTime: Number, waitingSeconds: Number })
  expectError(t, await endSession(app, String(listed?.id), OTHER_KEY), 404, 'SESSION_NOT_FOUND')
  const end = await endSession(app, String(listed?.id))
  t.equal(end.statusCode, 200)
  t.match(end.json(), { success: true, message: 'Pending Foundry session cancelled' })
  const res = await pending
  expectError(t, res, 409, 'SESSION_CANCELLED')
  const list = await listSessions(app)
  t.same([list.activeSessions, list.pendingSessions], [[], []])
  t.match(list.endedSessions, [{ status: 'ended', statusReason: 'cancelled by the client while starting' }])
  t.equal(app.browserPool.health().contexts, 0, 'the browser context is gone')
})

t.test('capacity: past the caps the answer is an immediate 429 with Retry-After', async (t) => {
  const { app } = await build(t, { MAX_SESSIONS_PER_KEY: 1, MAX_CONCURRENT_LOGINS: 1 })
  const { standin } = await foundry(t, { gameReadyDelayMs: 1500 })
  const args = { foundryUrl: standin.url, username: GM.name, password: GM.password }
  const first = startSession(app, args)
  t.ok(await eventually(async () => (await listSessions(app)).pendingSessions.length === 1))
  const second = await startSession(app, { ...args, apiKey: OTHER_KEY })
  expectError(t, second, 429, 'AT_CAPACITY')
  t.ok(Number(second.headers['retry-after']) > 0, 'Retry-After is set')
  t.equal((await listSessions(app)).pendingSessions.length, 1, 'refused at once: the first login is still under way')
  const firstRes = await first
  t.equal(firstRes.statusCode, 200)
  const again = await startSession(app, args)
  t.equal(again.statusCode, 200, 'the same world and user again is not a second session')
  t.match(again.json(), { existingSession: true, sessionId: firstRes.json().sessionId, clientId: firstRes.json().clientId })
  const third = await startSession(app, { ...args, username: PLAYER.name, password: PLAYER.password })
  expectError(t, third, 429, 'AT_CAPACITY')
  t.match(third.json().error, /maximum of 1 sessions/)
})

t.test('closing the service ends every session and Chromium', async (t) => {
  const { app } = await build(t)
  const { standin, relay } = await foundry(t)
  const pid = app.browserPool.pid()!
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200)
  const children = descendants(pid)
  t.ok(children.length > 0)
  await app.close()
  t.ok(await eventually(() => !alive(pid) && children.every((c) => !alive(c))), 'no Chromium process outlives the service')
  t.ok(await eventually(() => relay.open().length === 0), 'the module connection closed')
})

// Ends the file once the tests above are done, so the shared service (and
// its Chromium) is closed then rather than keeping the process alive.
t.end()
