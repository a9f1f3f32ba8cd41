// Error codes from the README's table that no other file produced: each one
// met through the API the way a client meets it, in the one error shape.
import t from 'tap'
import net from 'node:net'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveChromium } from '../../lib/browser/chromium.ts'
import { API_KEY, NO_LOGIN, OTHER_KEY, build, encryptNode, expectError, handshake } from '../helper.ts'
import { GM, PLAYER, WORLD, alive, endSession, eventually, foundry, listSessions, startSession } from './fixtures.ts'

t.test('JOIN_FORM_UNKNOWN: a join page with neither a user list nor a user name field', async (t) => {
  const { app, logs } = await build(t)
  const { standin } = await foundry(t, { joinForm: 'unknown' })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  expectError(t, res, 502, 'JOIN_FORM_UNKNOWN')
  t.match(res.json(), { stage: 'join', page: '/join', error: /Foundry 13\.351's join page has a login form this service does not recognise/ })
  t.same(standin.joins, [], 'no login was posted')
  t.notOk(standin.requests.some((r) => r.method === 'POST'), 'nothing was posted at all')
  t.match((await listSessions(app)).endedSessions, [{ status: 'failed', statusReason: /does not recognise/ }])
  t.ok(await eventually(() => app.browserPool.health().contexts === 0), 'no browser context left')
  t.notOk(logs().includes(GM.password), 'the password never reached the log')
})

t.test('FOUNDRY_LOGIN_LOST', async (t) => {
  t.test('Chromium dies while the game loads', async (t) => {
    const { app } = await build(t)
    const { standin } = await foundry(t, { gameReadyDelayMs: 60_000 })
    const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.ok(await eventually(async () => (await listSessions(app)).pendingSessions[0]?.stage === 'game-load', 20_000), 'logged in, the game loading')
    const pid = app.browserPool.pid()!
    process.kill(pid, 'SIGKILL')
    const res = await pending
    expectError(t, res, 502, 'FOUNDRY_LOGIN_LOST')
    t.match(res.json(), { stage: 'game-load', error: /browser page closed while loading the game/ })
    t.match((await listSessions(app)).endedSessions, [{ status: 'failed', statusReason: /page closed/ }])
    t.ok(await eventually(() => !alive(pid)), 'that Chromium is gone')
  })

  t.test('the world shuts down while the game loads', async (t) => {
    // Long enough that a timeout cannot pass for the answer.
    const { app } = await build(t, { GAME_READY_TIMEOUT_MS: 8000 })
    const { standin } = await foundry(t, { gameReadyDelayMs: 60_000 })
    const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.ok(await eventually(async () => (await listSessions(app)).pendingSessions[0]?.stage === 'game-load', 20_000), 'logged in, the game loading')
    t.ok(await eventually(() => standin.requests.some((r) => r.method === 'GET' && r.path === '/game' && r.status === 200), 10_000), '/game was served')
    t.same(standin.joins.map((j) => j.ok), [true], 'Foundry accepted the login')
    await standin.shutdownWorld()
    const res = await pending
    t.match({ status: res.statusCode, code: res.json().code }, { status: 502, code: 'FOUNDRY_LOGIN_LOST' }, '502 FOUNDRY_LOGIN_LOST')
    t.match(res.json(), { stage: 'game-load', error: /Foundry sent the browser from \/game to \/\S* while loading the game: the login was lost/ }, 'says where Foundry sent it')
    t.ok(await eventually(() => app.browserPool.health().contexts === 0), 'no browser context left')
  })
})

t.test('BROWSER_UNAVAILABLE and /health 503: a CHROMIUM_PATH that cannot start; the next session starts once it can', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fs-chromium-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  // The name makes the service treat it as a headless shell, as the real
  // binary it will exec later.
  const bin = join(dir, 'chromium-headless-shell')
  await writeFile(bin, '#!/bin/sh\necho "this Chromium is broken" >&2\nexit 3\n')
  await chmod(bin, 0o755)

  const { app } = await build(t, { CHROMIUM_PATH: bin })
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 503, '/health says the pool cannot serve')
  t.match(health.json(), { status: 'unavailable', browser: { chromium: 'down', lastError: /this Chromium is broken|exit|Failed to launch/i } })

  const { standin } = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  expectError(t, res, 503, 'BROWSER_UNAVAILABLE')
  t.match(res.json().error, /^Chromium could not be started: /)
  t.notOk(res.body.includes(GM.password), 'no secret in the answer')
  t.same(standin.requests, [], 'Foundry was never asked')
  const list = await listSessions(app)
  t.same([list.activeSessions.length, list.pendingSessions.length], [0, 0], 'no session holds a slot')

  // Fixed: the next session launches Chromium again, and /health recovers.
  const real = await resolveChromium()
  await writeFile(bin, `#!/bin/sh\nexec ${JSON.stringify(real.executablePath)} ${real.args.map((a) => JSON.stringify(a)).join(' ')} "$@"\n`)
  const again = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(again.statusCode, 200, again.body)
  const healthy = await app.inject({ method: 'GET', url: '/health' })
  t.equal(healthy.statusCode, 200)
  t.match(healthy.json(), { status: 'ok', browser: { chromium: 'running', lastError: null } })
  await endSession(app, again.json().sessionId)
})

t.test('HANDSHAKE_EXPIRED over HTTP (HANDSHAKE_TTL_MS)', async (t) => {
  const TTL = 1500
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_TTL_MS: TTL })
  const headers = { 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': GM.name }
  const start = async (h: Awaited<ReturnType<typeof handshake>>, nonce: string) => await app.inject({
    method: 'POST',
    url: '/start-session',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    payload: { handshakeToken: h.token, encryptedPassword: encryptNode(h.publicKey, { password: 'pw', nonce }) }
  })
  const fresh = await handshake(app, headers)
  const stale = await handshake(app, headers)
  t.ok(stale.expires - Date.now() <= TTL && stale.expires - Date.now() > 0, `expires within HANDSHAKE_TTL_MS (${stale.expires - Date.now()} ms)`)
  t.equal(new Date(stale.expiresAt).getTime(), stale.expires, 'expiresAt is the same instant')
  // In time, the token is checked further (a wrong nonce is the next refusal).
  expectError(t, await start(fresh, 'not-the-nonce'), 401, 'NONCE_MISMATCH')
  // Past its expiry, the other token is refused as expired.
  t.ok(await eventually(() => Date.now() > stale.expires + 10, TTL + 2000), 'the expiry passed')
  const late = await start(stale, stale.nonce)
  expectError(t, late, 401, 'HANDSHAKE_EXPIRED')
  t.match(late.json().error, /request a new one with POST \/session-handshake/)
})

t.test('MAX_SESSIONS: past the total cap, AT_CAPACITY with Retry-After, whichever key asks', async (t) => {
  const { app } = await build(t, { MAX_SESSIONS: 1, MAX_SESSIONS_PER_KEY: 5 })
  const { standin } = await foundry(t)
  const first = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(first.statusCode, 200, first.body)
  for (const apiKey of [API_KEY, OTHER_KEY]) {
    const res = await startSession(app, { foundryUrl: standin.url, username: PLAYER.name, password: PLAYER.password, apiKey, body: { requireModule: false } })
    expectError(t, res, 429, 'AT_CAPACITY')
    t.match(res.json().error, /This service runs its maximum of 1 sessions/)
    t.ok(Number(res.headers['retry-after']) >= 1, `Retry-After ${String(res.headers['retry-after'])}`)
  }
  t.same(standin.joins.map((j) => j.userId), [GM.id], 'no login was tried past the cap')
  t.equal((await endSession(app, first.json().sessionId)).statusCode, 200)
  const after = await startSession(app, { foundryUrl: standin.url, username: PLAYER.name, password: PLAYER.password, apiKey: OTHER_KEY, body: { requireModule: false } })
  t.equal(after.statusCode, 200, 'a slot is free again once a session ended')
  await endSession(app, after.json().sessionId, OTHER_KEY)
})

t.test('SERVICE_CLOSING', async (t) => {
  t.test('a start waiting on another login of the same user when the service closes', async (t) => {
    const { app } = await build(t)
    const { standin } = await foundry(t, { gameReadyDelayMs: 60_000 })
    // The first names no world: a second naming one waits to learn which
    // world the first logs into.
    const first = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.ok(await eventually(async () => (await listSessions(app)).pendingSessions.length === 1, 20_000), 'the first login runs')
    const second = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
    // Its handshake is used up as the request reaches the session manager.
    t.ok(await eventually(() => app.keystore.size() === 0, 10_000), 'the second request is in')
    t.equal((await listSessions(app)).pendingSessions.length, 1, 'waiting, not a second login')
    await app.close()
    const res = await second
    expectError(t, res, 503, 'SERVICE_CLOSING')
    t.match(res.json().error, /shutting down: retry against another instance/)
    t.ok((await first).statusCode >= 400, 'the first login did not complete either')
  })

  t.test('a login in progress when the service closes', async (t) => {
    const { app } = await build(t)
    const { standin } = await foundry(t, { gameReadyDelayMs: 60_000 })
    const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.ok(await eventually(async () => (await listSessions(app)).pendingSessions[0]?.stage === 'game-load', 20_000), 'the login is under way')
    await app.close()
    const res = await pending
    t.equal(res.statusCode, 503, 'not 409 SESSION_CANCELLED: the client did not cancel')
    t.equal(res.json().code, 'SERVICE_CLOSING', 'the client learns to retry elsewhere')
  })

  t.test('a request that arrives while the service closes', async (t) => {
    const { app } = await build(t, NO_LOGIN)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as net.AddressInfo).port
    // A request whose head is still arriving when the service starts to
    // close: the connection is not idle, so it stays open to be answered.
    const socket = net.connect(port, '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    await new Promise<void>((resolve) => { socket.once('connect', () => { resolve() }) })
    let data = ''
    socket.on('data', (c) => { data += String(c) })
    const ended = new Promise<void>((resolve) => { socket.on('close', () => { resolve() }); socket.on('error', () => { resolve() }) })
    socket.write(`GET /session HTTP/1.1\r\nHost: x\r\nx-api-key: ${API_KEY}\r\n`)
    t.ok(await eventually(() => data === '' && app.server.listening), 'the head is in flight, unanswered')
    const closed = app.close()
    t.ok(await eventually(() => !app.server.listening, 10_000), 'the service stopped accepting connections')
    socket.write('\r\n')
    await ended
    await closed
    t.match(data, /^HTTP\/1\.1 503 /, 'answered 503')
    const json = data.slice(data.indexOf('\r\n\r\n') + 4)
    let parsed: unknown = null
    try { parsed = JSON.parse(json) } catch {}
    t.match(parsed, { statusCode: 503, code: 'SERVICE_CLOSING', error: /shutting down/ }, 'in the one error shape')
  })
})

t.test('REQUEST_TIMEOUT: a request head that does not arrive in time', async (t) => {
  // The service's own server options and client-error handler; only Node's
  // timers are shortened (its defaults: 60 s, checked every 30 s).
  const { app } = await build(t, NO_LOGIN, { http: { headersTimeout: 500, connectionsCheckingInterval: 50 } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const socket = net.connect((app.server.address() as net.AddressInfo).port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let data = ''
  socket.on('data', (c) => { data += String(c) })
  const ended = new Promise<void>((resolve) => { socket.on('close', () => { resolve() }); socket.on('error', () => { resolve() }) })
  socket.write(`GET /session HTTP/1.1\r\nHost: x\r\nx-api-key: ${API_KEY}\r\n`) // never finished
  await ended
  t.match(data, /^HTTP\/1\.1 408 /)
  t.same(JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)), { statusCode: 408, code: 'REQUEST_TIMEOUT', error: 'The request was not received in time' })
})

t.test('INTERNAL_ERROR: an unexpected failure is logged, and answered without its details', async (t) => {
  // The service's error handler alone, on a route that fails as no route of
  // the service should (the style guide's plugin-alone test).
  const { default: Fastify } = await import('fastify')
  const { default: errorHandler } = await import('../../plugins/error-handler.ts')
  const lines: string[] = []
  const { Writable } = await import('node:stream')
  const app = Fastify({ logger: { level: 'info', stream: new Writable({ write (c, _e, cb) { lines.push(String(c)); cb() } }) } })
  t.teardown(async () => { await app.close() })
  await app.register(errorHandler)
  app.get('/crash', async () => { throw new Error('db password hunter2 in a stack') })
  app.get('/foreign-5xx', async () => { throw Object.assign(new Error('upstream detail'), { statusCode: 503, code: 'SOME_LIBRARY_CODE' }) })
  for (const url of ['/crash', '/foreign-5xx']) {
    const res = await app.inject({ method: 'GET', url })
    t.match(res.json(), { code: 'INTERNAL_ERROR', error: /\w+ \w+/ }, `${url}: INTERNAL_ERROR`)
    t.equal(res.statusCode, 500, `${url}: with the catalogue's status`)
    t.match(res.json().error, /^Internal server error: the failure was logged/)
    t.notMatch(res.body, /hunter2|upstream detail|SOME_LIBRARY_CODE/, `${url}: no detail in the answer`)
  }
  t.match(lines.join(''), /hunter2/, 'the details are in the log')
})
