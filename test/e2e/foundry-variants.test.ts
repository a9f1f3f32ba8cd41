// Every Foundry a user runs (issue 3): v11–v14 join pages, a route prefix,
// admin password and world launch, module 2.x and 3.x, and the failures that
// must explain themselves. Real Chromium against the stand-in.
import t from 'tap'
import https from 'node:https'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultClientId } from '../../support/foundry/standin.ts'
import { API_KEY, OTHER_KEY, build, expectError } from '../helper.ts'
import { GM, PLAYER, WORLD, endSession, foundry, listSessions, startSession } from './fixtures.ts'

const ASSISTANT = { id: 'cC4sT6uV8wX0yZ2c', name: 'Assistant', role: 3 as const, password: 'assistant-secret-Pw' }

// One service (one Chromium) for the tests that use the default settings:
// each test has its own stand-in, so its sessions are its own, and ends them.
const { app, logs } = await build(t)

t.test('every Foundry generation logs in the way its own join page does', async (t) => {
  for (const [version, key] of [['11.315', 'userid'], ['12.331', 'userid'], ['13.351', 'userid'], ['14.365', 'userid'], ['14.367', 'userId']] as const) {
    t.test(version, async (t) => {
      const { standin, relay } = await foundry(t, { version })
      const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
      t.equal(res.statusCode, 200, res.body)
      t.equal(res.json().clientId, `foundry-${GM.id}`)
      t.ok(relay.connections.some((c) => c.id === `foundry-${GM.id}`))
      const joins = standin.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/join'))
      t.equal(joins.length, 1, 'one POST /join: the right key the first time')
      t.match(joins[0]?.body, { [key]: GM.id, action: 'join' })
      t.match((await listSessions(app)).activeSessions.find((s) => s.id === res.json().sessionId), { foundryVersion: version })
      t.equal((await endSession(app, res.json().sessionId)).statusCode, 200)
    })
  }
})

t.test('Foundry behind a route prefix', async (t) => {
  const { standin } = await foundry(t, { routePrefix: 'foundry', activeWorld: null })
  t.match(standin.url, /\/foundry\/$/)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().clientId, `foundry-${GM.id}`)
  t.ok(standin.requests.every((r) => r.path.startsWith('/foundry/')), 'every request carried the prefix')
  await endSession(app, res.json().sessionId)
})

t.test('the setup page: launch by title, case-insensitively or by id; telemetry; migration; lock', async (t) => {
  t.test('match by id, with the telemetry prompt showing', async (t) => {
    const { standin } = await foundry(t, { activeWorld: null, telemetryPrompt: true })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.id })
    t.equal(res.statusCode, 200, res.body)
    t.equal(standin.state().activeWorld, WORLD.id)
    await endSession(app, res.json().sessionId)
  })

  t.test('v14.367 first launch: tours closed, the /players gate passed', async (t) => {
    const { standin } = await foundry(t, { version: '14.367', activeWorld: null, tourPrompt: true, telemetryPrompt: true, playersGate: true })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
    t.equal(res.statusCode, 200, res.body)
    t.ok(standin.requests.some((r) => r.method === 'POST' && r.path.endsWith('/players')), 'Save and Continue was pressed')
    t.match(standin.requests.find((r) => r.method === 'POST' && r.path.endsWith('/join'))?.body, { userId: GM.id })
    await endSession(app, res.json().sessionId)
  })

  t.test('a world that needs migrating is never migrated', async (t) => {
    const { standin } = await foundry(t, { activeWorld: null, worlds: [{ ...WORLD, needsMigration: true }] })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
    expectError(t, res, 409, 'WORLD_NEEDS_MIGRATION')
    t.match(res.json(), { error: /needs a data migration.*back up/, stage: 'world-launch', page: '/setup' })
    t.same(standin.state().migratedWorlds, [], 'no migration ran')
    t.equal(standin.state().activeWorld, null, 'the world was not launched')
  })

  t.test('a locked world', async (t) => {
    const { standin } = await foundry(t, { activeWorld: null, worlds: [{ ...WORLD, locked: true }] })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
    expectError(t, res, 409, 'WORLD_LOCKED')
    t.match(res.json().error, /PACKAGE\.LaunchLocked/)
  })

  t.test('the licence page is an error, never accepted', async (t) => {
    const { standin } = await foundry(t, { eulaSigned: false })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    expectError(t, res, 409, 'FOUNDRY_LICENSE_NOT_SIGNED')
    t.match(res.json(), { page: '/license' })
  })
})

t.test('an admin password guards the setup page', async (t) => {
  const ADMIN = 'admin-secret-Pa55!'
  const { standin } = await foundry(t, { activeWorld: null, adminPassword: ADMIN })
  const args = { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title }

  const none = await startSession(app, args)
  expectError(t, none, 403, 'ADMIN_PASSWORD_REQUIRED')
  t.match(none.json(), { error: /administrator password to launch "Lost Mine of Phandelver".*encryptedAdminPassword/, stage: 'admin-auth', page: '/auth' })

  const wrong = await startSession(app, { ...args, adminPassword: 'wrong-admin-pw-42' })
  expectError(t, wrong, 422, 'ADMIN_PASSWORD_REJECTED')
  t.equal(standin.state().activeWorld, null)

  const ok = await startSession(app, { ...args, adminPassword: ADMIN })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(standin.state().activeWorld, WORLD.id)
  const auth = standin.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/auth'))
  t.match(auth.at(-1), { contentType: /application\/x-www-form-urlencoded/, body: { action: 'adminAuth' }, status: 302 }, 'posted by Foundry\'s own form')

  for (const secret of [ADMIN, 'wrong-admin-pw-42', GM.password]) {
    t.notOk(logs().includes(secret), 'no admin password or password in the log')
    t.notOk([none.body, wrong.body, ok.body].some((b) => b.includes(secret)), 'nor in a response')
  }
  await endSession(app, ok.json().sessionId)
})

t.test('users: already active elsewhere, Assistant GM, not needing the module', async (t) => {
  t.test('a user shown as active needs loginIfActive', async (t) => {
    const { standin } = await foundry(t, { activeUserIds: [GM.id] })
    const args = { foundryUrl: standin.url, username: GM.name, password: GM.password }
    const res = await startSession(app, args)
    expectError(t, res, 409, 'USER_ALREADY_ACTIVE')
    t.match(res.json().error, /already logged in elsewhere.*loginIfActive/)
    t.equal(standin.joins.length, 0, 'no login was posted')
    const forced = await startSession(app, { ...args, body: { loginIfActive: true } })
    t.equal(forced.statusCode, 200, forced.body)
    await endSession(app, forced.json().sessionId)
  })

  t.test('an Assistant GM gets a clear error, or a session without the module', async (t) => {
    const { standin } = await foundry(t, { worlds: [{ ...WORLD, users: [...WORLD.users, ASSISTANT] }] })
    const args = { foundryUrl: standin.url, username: ASSISTANT.name, password: ASSISTANT.password }
    const res = await startSession(app, args)
    expectError(t, res, 409, 'NOT_GAMEMASTER')
    t.match(res.json().error, /Assistant GM.*requireModule/)
    const noModule = await startSession(app, { ...args, body: { requireModule: false } })
    t.equal(noModule.statusCode, 200, noModule.body)
    t.match(noModule.json(), { success: true, clientId: '', moduleConnected: false, message: /not connected/ })
    t.match((await listSessions(app)).activeSessions.find((s) => s.id === noModule.json().sessionId), { status: 'active', clientId: '', userId: ASSISTANT.id })
    await endSession(app, noModule.json().sessionId)
  })

  t.test('a player without the module', async (t) => {
    const { standin } = await foundry(t)
    const res = await startSession(app, { foundryUrl: standin.url, username: PLAYER.name, password: PLAYER.password, body: { requireModule: false } })
    t.equal(res.statusCode, 200, res.body)
    await endSession(app, res.json().sessionId)
  })
})

t.test('the same world and user twice returns the existing session', async (t) => {
  const { standin } = await foundry(t)
  const args = { foundryUrl: standin.url, username: GM.name, password: GM.password }
  const [a, b] = await Promise.all([startSession(app, args), startSession(app, { ...args, username: 'gamemaster', world: WORLD.title })])
  t.equal(a.statusCode, 200, a.body)
  t.equal(b.statusCode, 200, b.body)
  t.equal(a.json().sessionId, b.json().sessionId, 'one session')
  t.equal([a, b].filter((r) => r.json().existingSession === true).length, 1, 'the second says existingSession')
  t.equal(standin.joins.length, 1, 'one login')
  const other = await startSession(app, { ...args, apiKey: OTHER_KEY, body: { loginIfActive: true, requireModule: false } })
  t.equal(other.statusCode, 200, other.body)
  t.not(other.json().sessionId, a.json().sessionId, 'another key gets its own session')
  await endSession(app, a.json().sessionId)
  await endSession(app, other.json().sessionId, OTHER_KEY)
})

t.test('module 3.x: a seeded connection token, auth-success, and refusals', async (t) => {
  const { app, logs } = await build(t, { MODULE_CONNECT_TIMEOUT_MS: 3000 })
  const TOKEN = 'conn-token-' + 'x'.repeat(40)
  const { standin, relay } = await foundry(t, { moduleVersion: 3 }, { validTokens: [TOKEN] })
  const args = { foundryUrl: standin.url, username: GM.name, password: GM.password }

  const ok = await startSession(app, { ...args, connectionToken: TOKEN })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(ok.json().clientId, defaultClientId(WORLD.id), 'the clientId of the paired world')
  const conn = relay.connections.find((c) => c.id === ok.json().clientId)
  t.match(conn, { protocol: 'v3', authed: true })
  t.equal(conn?.query.token, undefined, 'no token in the URL')
  await endSession(app, ok.json().sessionId)

  const missing = await startSession(app, args)
  expectError(t, missing, 504, 'MODULE_NOT_CONNECTED')
  t.match(missing.json().error, /encryptedConnectionToken/)

  const bad = await startSession(app, { ...args, connectionToken: 'not-a-valid-token-123' })
  expectError(t, bad, 422, 'MODULE_TOKEN_REFUSED')
  t.match(bad.json().error, /close 1008/)

  for (const secret of [TOKEN, 'not-a-valid-token-123']) {
    t.notOk(logs().includes(secret), 'the connection token never reached the log')
    t.notOk([ok.body, missing.body, bad.body].some((b) => b.includes(secret)))
  }
})

t.test('module 2.x: the relay says another browser holds the connection (4004)', async (t) => {
  const { standin } = await foundry(t, {}, { rejectIds: [`foundry-${GM.id}`] })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  expectError(t, res, 409, 'MODULE_CONNECTION_TAKEN')
  t.match(res.json(), { error: /4004.*another browser/, stage: 'module-connection' })
})

t.test('TLS failures have their own code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  const server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('hi'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const res = await startSession(app, { foundryUrl: `https://127.0.0.1:${(server.address() as { port: number }).port}/`, username: GM.name, password: 'x' })
  expectError(t, res, 502, 'FOUNDRY_TLS_ERROR')
  t.match(res.json(), { error: /TLS connection to 127\.0\.0\.1:\d+ failed \(ERR_CERT_/, stage: 'reach' })
})

t.test('a failure screenshot, for its API key only, with no typed secret', async (t) => {
  const { standin } = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: 'wrong-password-77', body: { screenshotOnFailure: true } })
  expectError(t, res, 422, 'FOUNDRY_LOGIN_REJECTED')
  const url = res.json().screenshot as string
  t.match(url, /^\/failure-screenshot\/[0-9a-f]{32}$/)
  const png = await app.inject({ method: 'GET', url, headers: { 'x-api-key': API_KEY } })
  t.equal(png.statusCode, 200)
  t.equal(png.headers['content-type'], 'image/png')
  t.same([...png.rawPayload.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG')
  t.ok(png.rawPayload.length > 1000)
  expectError(t, await app.inject({ method: 'GET', url, headers: { 'x-api-key': OTHER_KEY } }), 404, 'SCREENSHOT_NOT_FOUND')
  expectError(t, await app.inject({ method: 'GET', url }), 401, 'API_KEY_MISSING')
})

// Ends the file once the tests above are done, so the shared service (and
// its Chromium) is closed then rather than keeping the process alive.
t.end()
