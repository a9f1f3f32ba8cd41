// Where real Foundry may differ from the stand-in (issue 8 §2; foundry.md
// marks each (?)): the service logs in, or fails with its precise code,
// whichever way the server behaves. Real Chromium against the stand-in's
// variants (test/standin/uncertain.test.ts checks the variants themselves).
import t from 'tap'
import { existsSync } from 'node:fs'
import { build, expectError } from '../helper.ts'
import { GM, WORLD, endSession, foundry, startSession } from './fixtures.ts'

// One service (one Chromium) for the tests with the default settings: each
// test has its own stand-in, so the sessions and requests it looks at are its
// own, and it ends the sessions it started.
const { app } = await build(t)

const joinPosts = (s: { requests: Array<{ method: string, path: string, body?: unknown }> }): unknown[] =>
  s.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/join')).map((r) => r.body)

t.test('the join POST key: the page variant\'s own key first, then both keys', async (t) => {
  t.test('a user name page (14.367) on a server that still reads userid', async (t) => {
    const { standin } = await foundry(t, { version: '14.367', joinKey: 'userid' })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.equal(res.statusCode, 200, res.body)
    const posts = joinPosts(standin)
    t.equal(posts.length, 2, 'the fallback ran')
    t.same(posts[0], { username: GM.name, userId: GM.id, password: GM.password, action: 'join' }, 'first as the 14.367 page posts')
    t.same(posts[1], { username: GM.name, userid: GM.id, userId: GM.id, password: GM.password, action: 'join' }, 'then both keys')
    t.match(standin.joins, [{ userId: GM.id, ok: false, reason: 'JOIN.ErrorUserDoesNotExist' }, { userId: GM.id, ok: true }])
    await endSession(app, res.json().sessionId)
  })

  t.test('a user list page (14.365) on a server that reads userId', async (t) => {
    const { standin } = await foundry(t, { version: '14.365', joinKey: 'userId' })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
    t.equal(res.statusCode, 200, res.body)
    const posts = joinPosts(standin)
    t.equal(posts.length, 2, 'the fallback ran')
    t.same(posts[0], { userid: GM.id, password: GM.password, action: 'join' }, 'first as the user list page posts')
    t.same(posts[1], { userid: GM.id, userId: GM.id, password: GM.password, action: 'join' }, 'then both keys')
    await endSession(app, res.json().sessionId)
  })

  t.test('a wrong password is still a wrong password after the fallback', async (t) => {
    const { standin } = await foundry(t, { version: '14.367', joinKey: 'userid' })
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: 'not-the-password' })
    expectError(t, res, 422, 'FOUNDRY_LOGIN_REJECTED')
    t.match(res.json().error, /JOIN\.ErrorInvalidPassword/)
  })
})

t.test('the join answer\'s redirect behind a route prefix, with or without the prefix', async (t) => {
  for (const joinRedirect of ['prefixed', 'unprefixed', 'relative'] as const) {
    t.test(joinRedirect, async (t) => {
      const { standin } = await foundry(t, { routePrefix: 'foundry', joinRedirect })
      const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
      t.equal(res.statusCode, 200, res.body)
      t.equal(res.json().clientId, `foundry-${GM.id}`)
      t.ok(standin.requests.some((r) => r.path === '/foundry/game'), 'the prefixed /game was loaded')
      t.notOk(standin.requests.some((r) => r.path === '/game'), 'never the unprefixed one')
      await endSession(app, res.json().sessionId)
    })
  }
})

t.test('v14 administrator login with its user name field', async (t) => {
  const args = { username: GM.name, password: GM.password, world: WORLD.title, adminPassword: 'admin-pw' }

  t.test('the server takes the password alone: the world is launched', async (t) => {
    const { standin } = await foundry(t, { version: '14.367', activeWorld: null, adminPassword: 'admin-pw', adminUsername: 'root', adminUsernameRequired: false })
    const res = await startSession(app, { foundryUrl: standin.url, ...args })
    t.equal(res.statusCode, 200, res.body)
    t.equal(standin.state().activeWorld, WORLD.id)
    await endSession(app, res.json().sessionId)
  })

  t.test('the server needs the administrator user name and none was sent: a precise refusal', async (t) => {
    const { standin } = await foundry(t, { version: '14.367', activeWorld: null, adminPassword: 'admin-pw', adminUsername: 'root' })
    const res = await startSession(app, { foundryUrl: standin.url, ...args })
    expectError(t, res, 422, 'ADMIN_PASSWORD_REJECTED')
    t.match(res.json(), { error: /ERROR\.InvalidAdminKey.*administrator user name.*send it as adminUsername/, stage: 'admin-auth', page: '/auth' })
    t.equal(standin.state().activeWorld, null)
  })

  t.test('the server needs the administrator user name and adminUsername carries it: the world is launched', async (t) => {
    const { standin } = await foundry(t, { version: '14.367', activeWorld: null, adminPassword: 'admin-pw', adminUsername: 'root' })
    const res = await startSession(app, { foundryUrl: standin.url, ...args, body: { adminUsername: 'root' } })
    t.equal(res.statusCode, 200, res.body)
    t.equal(standin.state().activeWorld, WORLD.id)
    await endSession(app, res.json().sessionId)
  })

  t.test('a wrong adminUsername: refused, naming both fields', async (t) => {
    const { standin } = await foundry(t, { version: '14.367', activeWorld: null, adminPassword: 'admin-pw', adminUsername: 'root' })
    const res = await startSession(app, { foundryUrl: standin.url, ...args, body: { adminUsername: 'admin' } })
    expectError(t, res, 422, 'ADMIN_PASSWORD_REJECTED')
    t.match(res.json(), { error: /check adminUsername and encryptedAdminPassword/, stage: 'admin-auth' })
    t.equal(standin.state().activeWorld, null)
  })

  t.test('adminUsername where Foundry asks for none (v13): ignored, the world is launched', async (t) => {
    const { standin } = await foundry(t, { version: '13.351', activeWorld: null, adminPassword: 'admin-pw' })
    const res = await startSession(app, { foundryUrl: standin.url, ...args, body: { adminUsername: 'root' } })
    t.equal(res.statusCode, 200, res.body)
    t.equal(standin.state().activeWorld, WORLD.id)
    await endSession(app, res.json().sessionId)
  })
})

t.test('a world launch that fails: WORLD_LAUNCH_FAILED with Foundry\'s reason', async (t) => {
  const reason = 'System "pf2e" is not installed'
  const { standin } = await foundry(t, { activeWorld: null, worlds: [{ ...WORLD, launchFailure: reason }] })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
  expectError(t, res, 502, 'WORLD_LAUNCH_FAILED')
  t.match(res.json(), { error: /SETUP\.WorldLaunchFailure: System "pf2e" is not installed/, stage: 'world-launch', page: '/setup' })
  t.equal(standin.state().activeWorld, null)
})

t.test('a world that needs migrating: the service never triggers a migration', async (t) => {
  // The stand-in migrates on any launch that bypasses the setup page's dialog.
  const { standin } = await foundry(t, { activeWorld: null, worlds: [{ ...WORLD, needsMigration: true }] })
  for (const relaunch of [false, true]) {
    const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title, body: { relaunchWorld: relaunch } })
    expectError(t, res, 409, 'WORLD_NEEDS_MIGRATION')
  }
  t.same(standin.state().migratedWorlds, [], 'no migration ran')
  t.same(standin.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/setup')), [], 'no launch was ever posted')
  t.equal(standin.state().activeWorld, null)
})

// Debian's chromium (newer than the bundled one) as CHROMIUM_PATH, and the bundled one.
const DEBIAN = '/usr/lib/chromium/chromium'
const chromiums: Array<[string, string]> = [['bundled @sparticuz/chromium', ''], ['Debian chromium', DEBIAN]]

t.test('canvas on (noCanvas: false): Foundry\'s canvas starts on every Chromium', async (t) => {
  for (const [name, path] of chromiums) {
    t.test(name, { skip: path !== '' && !existsSync(path) ? `${path} is not installed (apt-get install chromium)` : false }, async (t) => {
      const { app } = await build(t, { CHROMIUM_PATH: path })
      const { standin, relay } = await foundry(t)
      const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, body: { noCanvas: false } })
      t.equal(res.statusCode, 200, res.body)
      t.ok(relay.open().some((c) => c.id === `foundry-${GM.id}`), 'the module connected')
      t.match(standin.canvas, [{ userId: GM.id, ready: true }], 'a WebGL context: the canvas started')
      await endSession(app, res.json().sessionId)
    })
  }
})

// Ends the file once the tests above are done, so the shared service (and
// its Chromium) is closed then rather than keeping the process alive.
t.end()
