// The Foundry stand-in over plain HTTP (no browser): routes per state, the
// session cookie, POST /join strictness and its bare i18n keys, /auth,
// POST /setup, /api/status, the route prefix.
import t from 'tap'
import { startFoundryStandin, type StandinOptions } from '../../support/foundry/standin.ts'
import { BANNED, GM, GM2, PLAYER, makeWorld } from '../../support/foundry/browser.ts'

async function standin (t: { teardown: (fn: () => unknown) => void }, opts: Partial<StandinOptions> = {}) {
  const s = await startFoundryStandin({ worlds: [makeWorld('world-one'), makeWorld('world-two')], joinRenderDelayMs: 50, launchDelayMs: 100, ...opts })
  t.teardown(() => s.close())
  return s
}

const get = async (url: string, cookie?: string) => await fetch(url, { redirect: 'manual', headers: cookie !== undefined ? { cookie } : {} })
const post = async (url: string, body: string, type: string, cookie?: string) => await fetch(url, {
  method: 'POST', redirect: 'manual', body, headers: { 'content-type': type, ...(cookie !== undefined ? { cookie } : {}) }
})
const cookieOf = (r: Response): string => {
  const sc = r.headers.get('set-cookie') ?? ''
  return sc.split(';')[0] ?? ''
}

t.test('routes with no world, no admin password', async (t) => {
  const s = await standin(t)
  const root = await get(s.url)
  t.equal(root.status, 302)
  t.equal(root.headers.get('location'), '/setup')
  const sc = root.headers.get('set-cookie') ?? ''
  t.match(sc, /^session=[0-9a-f]{24}; Path=\/;/, 'session cookie: 24 hex, Path=/')
  t.notMatch(sc, /HttpOnly/i, 'cookie is readable from JavaScript')
  const cookie = cookieOf(root)
  const again = await get(s.url, cookie)
  t.equal(again.headers.get('set-cookie'), null, 'a known cookie is not replaced')
  t.equal((await get(s.url + 'setup', cookie)).status, 200)
  const join = await get(s.url + 'join', cookie)
  t.equal(join.status, 200)
  const html = await join.text()
  t.match(html, /no active game session/i)
  t.notMatch(html, /<form|<select|join-game/, 'no form, no template without a world')
  t.equal((await get(s.url + 'game', cookie)).headers.get('location'), '/join')
  t.same(await (await get(s.url + 'api/status')).json(), { active: false, version: '13.351' })
  t.equal((await get(s.url + 'nope')).status, 404)
})

t.test('admin password: / → /auth; setup needs auth; native form auth', async (t) => {
  const s = await standin(t, { adminPassword: 'admin!' })
  const root = await get(s.url)
  t.equal(root.headers.get('location'), '/auth')
  const cookie = cookieOf(root)
  t.equal((await get(s.url + 'setup', cookie)).headers.get('location'), '/auth')
  const authPage = await (await get(s.url + 'auth', cookie)).text()
  t.match(authPage, /<form id="setup-authentication" method="post"/)
  t.match(authPage, /name="adminPassword"/)

  const launch = await post(s.url + 'setup', JSON.stringify({ action: 'launchWorld', world: 'world-one' }), 'application/json', cookie)
  t.equal(launch.status, 403, 'launch without admin auth is refused')
  t.same(await launch.json(), { error: 'ERROR.InvalidAdminKey' })

  t.equal((await post(s.url + 'auth', JSON.stringify({ adminPassword: 'admin!', action: 'adminAuth' }), 'application/json', cookie)).status, 400, '/auth takes the native urlencoded form only')
  t.equal((await post(s.url + 'auth', 'adminPassword=admin!&action=adminAuth', 'application/x-www-form-urlencoded')).status, 403, '/auth without a session cookie')
  const bad = await post(s.url + 'auth', 'adminPassword=wrong&action=adminAuth', 'application/x-www-form-urlencoded', cookie)
  t.equal(bad.status, 302)
  t.equal(bad.headers.get('location'), '/auth', 'a wrong password stays on /auth')
  t.match(await (await get(s.url + 'auth', cookie)).text(), /ERROR\.InvalidAdminKey/, 'with an error shown')
  t.equal((await get(s.url + 'setup', cookie)).headers.get('location'), '/auth', 'still not admin')

  const ok = await post(s.url + 'auth', 'adminPassword=admin%21&action=adminAuth', 'application/x-www-form-urlencoded', cookie)
  t.equal(ok.status, 302)
  t.equal(ok.headers.get('location'), '/setup')
  t.equal(ok.headers.get('set-cookie'), null, 'the session id does not change')
  t.equal((await get(s.url + 'setup', cookie)).status, 200)

  const unknown = await post(s.url + 'setup', JSON.stringify({ action: 'launchWorld', world: 'missing' }), 'application/json', cookie)
  t.equal(unknown.status, 404)
  const form = await post(s.url + 'setup', 'action=launchWorld&world=world-one', 'application/x-www-form-urlencoded', cookie)
  t.equal(form.status, 400, 'setup actions are JSON only')
  const go = await post(s.url + 'setup', JSON.stringify({ action: 'launchWorld', world: 'world-one' }), 'application/json', cookie)
  t.equal(go.status, 200)
  t.same(await go.json(), {})
  t.equal(s.state().activeWorld, null, 'the launch is asynchronous')
  t.same(await (await get(s.url + 'api/status')).json(), { active: false, version: '13.351' })
  for (let i = 0; i < 100 && s.state().activeWorld === null; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(s.state().activeWorld, 'world-one', 'then the world is active')
  const status = await (await get(s.url + 'api/status')).json() as Record<string, unknown>
  t.match(status, { active: true, version: '13.351', world: 'world-one', system: 'dnd5e', systemVersion: '5.0.4', users: 0, uptime: Number })
  t.equal((await get(s.url + 'setup', cookie)).headers.get('location'), '/join', '/setup while a world runs → /join')
  t.equal((await get(s.url, cookie)).headers.get('location'), '/join')
})

t.test('v13 JSON adminAuth on POST /setup', async (t) => {
  const s = await standin(t, { adminPassword: 'k' })
  const cookie = cookieOf(await get(s.url))
  t.equal((await post(s.url + 'setup', JSON.stringify({ action: 'adminAuth', adminPassword: 'x' }), 'application/json', cookie)).status, 403)
  t.equal((await post(s.url + 'setup', JSON.stringify({ action: 'adminAuth', adminPassword: 'k' }), 'application/json', cookie)).status, 200)
  t.equal((await get(s.url + 'setup', cookie)).status, 200)
})

t.test('locked, migration, EULA', async (t) => {
  const s = await standin(t, { worlds: [makeWorld('locked', [GM], { locked: true }), makeWorld('old', [GM], { needsMigration: true })] })
  const cookie = cookieOf(await get(s.url))
  const locked = await post(s.url + 'setup', JSON.stringify({ action: 'launchWorld', world: 'locked' }), 'application/json', cookie)
  t.equal(locked.status, 403)
  t.same(await locked.json(), { error: 'PACKAGE.LaunchLocked' })
  // As real Foundry: only the setup page's dialog asks; a direct launch migrates.
  const old = await post(s.url + 'setup', JSON.stringify({ action: 'launchWorld', world: 'old' }), 'application/json', cookie)
  t.equal(old.status, 200, 'a direct launch of an old world is accepted')
  await s.launchWorld('old')
  t.same(s.state().migratedWorlds, ['old'], 'and migrates it')
  t.equal(s.state().activeWorld, 'old')

  const e = await standin(t, { eulaSigned: false, activeWorld: 'world-one' })
  for (const p of ['', 'setup', 'join', 'game', 'auth', 'api/status']) {
    const r = await get(e.url + p)
    t.equal(r.headers.get('location'), '/license', `/${p} → /license`)
  }
  t.equal((await get(e.url + 'license')).status, 200)
})

t.test('POST /join is strict', async (t) => {
  const s = await standin(t, { activeWorld: 'world-one' })
  const join = await get(s.url + 'join')
  t.equal(join.status, 200)
  const cookie = cookieOf(join)
  t.match(cookie, /^session=[0-9a-f]{24}$/)
  const shell = await join.text()
  t.ok(shell.length > 1000 && shell.length < 4000, `small shell (${shell.length} bytes)`)
  t.match(shell, /<body class="[^"]*\bauth\b[^"]*\bjoin\b/)
  t.match(shell, /<header id="main-header">\s*<h1>Title of world-one<\/h1>/)
  t.match(shell, /<template id="join-game"><\/template>/)
  t.notMatch(shell, /<form|<select|name="password"/, 'no form in the HTML')

  const body = (o: unknown) => JSON.stringify(o)
  const j = async (payload: unknown, c: string | null = cookie, type = 'application/json') => {
    const r = await post(s.url + 'join', typeof payload === 'string' ? payload : body(payload), type, c ?? undefined)
    return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() }
  }
  t.equal((await j(`userid=${GM.id}&password=${GM.password}&action=join`, cookie, 'application/x-www-form-urlencoded')).status, 400, 'urlencoded join → 400')
  t.equal((await j({ userid: GM.id, password: GM.password, action: 'join' }, cookie, 'text/plain')).status, 400, 'text/plain join → 400')
  t.equal((await j({ userid: GM.id, password: GM.password, action: 'join' }, null)).status, 403, 'no cookie → 403')
  t.equal((await j({ userid: GM.id, password: GM.password, action: 'join' }, 'session=0123456789abcdef01234567')).status, 403, 'unknown cookie → 403')

  const wrongKey = await j({ userId: GM.id, password: GM.password, action: 'join' })
  t.same([wrongKey.status, wrongKey.text], [401, 'JOIN.ErrorUserDoesNotExist'], 'v13 with the v14 key')
  t.match(wrongKey.type, /^text\/plain/)
  t.same(await j({ userid: 'zzzzzzzzzzzzzzzz', password: '', action: 'join' }).then((r) => [r.status, r.text]), [401, 'JOIN.ErrorUserDoesNotExist'])
  t.same(await j({ userid: BANNED.id, password: '', action: 'join' }).then((r) => [r.status, r.text]), [401, 'JOIN.ErrorBanned'])
  t.same(await j({ userid: GM.id, password: 'nope', action: 'join' }).then((r) => [r.status, r.text]), [401, 'JOIN.ErrorInvalidPassword'])
  t.same(await j({ userid: GM.id, action: 'join' }).then((r) => [r.status, r.text]), [401, 'JOIN.ErrorInvalidPassword'], 'a missing password is an empty one')
  t.same(await j({ adminPassword: '', action: 'shutdown' }).then((r) => [r.status, r.text]), [403, 'ERROR.InvalidAdminKey'], 'return-to-setup without an admin password fails')
  t.equal(s.state().activeWorld, 'world-one')

  const ok = await j({ userid: GM.id, userId: GM.id, password: GM.password, action: 'join' })
  t.equal(ok.status, 200, 'both keys: the variant key is used')
  t.same(JSON.parse(ok.text), { status: 'success', message: 'JOIN.LoginSuccess', redirect: '/game' })
  t.same(s.state().activeUsers, [GM.id], 'the user becomes active')
  const again = await get(s.url + 'game', cookie)
  t.equal(again.status, 200, '/game for the joined session')
  t.equal(again.headers.get('set-cookie'), null, 'join did not change the cookie')
  t.equal((await get(s.url, cookie)).headers.get('location'), '/game')

  // A second browser may log in as the same (active) user.
  const other = cookieOf(await get(s.url + 'join'))
  t.equal((await j({ userid: GM.id, password: GM.password, action: 'join' }, other)).status, 200, 'second login of an active user is allowed')
  t.same(await j({ userid: PLAYER.id, password: '', action: 'join' }, other).then((r) => r.status), 200, 'empty password for a password-less user')

  // GET /join logs the first browser out.
  t.equal((await get(s.url + 'join', cookie)).status, 200)
  t.equal((await get(s.url + 'game', cookie)).headers.get('location'), '/join', 'GET /join logged the session out')
  t.same(s.joins.map((x) => [x.userId, x.ok, x.reason ?? null]), [
    [GM.id, false, 'JOIN.ErrorUserDoesNotExist'],
    ['zzzzzzzzzzzzzzzz', false, 'JOIN.ErrorUserDoesNotExist'],
    [BANNED.id, false, 'JOIN.ErrorBanned'],
    [GM.id, false, 'JOIN.ErrorInvalidPassword'],
    [GM.id, false, 'JOIN.ErrorInvalidPassword'],
    [GM.id, true, null],
    [GM.id, true, null],
    [PLAYER.id, true, null]
  ])
  t.equal(s.requests.filter((r) => r.path === '/join' && r.method === 'POST').length, 13)
})

t.test('admin-password shutdown through /join; v14.367 key', async (t) => {
  const s = await standin(t, { activeWorld: 'world-one', adminPassword: 'root', version: '14.367' })
  const cookie = cookieOf(await get(s.url + 'join'))
  const j = async (payload: unknown) => { const r = await post(s.url + 'join', JSON.stringify(payload), 'application/json', cookie); return [r.status, await r.text()] }
  t.same(await j({ userid: GM2.id, password: '', action: 'join' }), [401, 'JOIN.ErrorUserDoesNotExist'], 'old key on 14.367')
  t.same((await j({ userId: GM2.id, password: '', action: 'join' }))[0], 200)
  t.same(await j({ adminPassword: 'nope', action: 'shutdown' }), [403, 'ERROR.InvalidAdminKey'])
  const [status, text] = await j({ adminPassword: 'root', action: 'shutdown' })
  t.equal(status, 200)
  t.match(JSON.parse(text as string), { status: 'success', redirect: '/setup' })
  t.equal(s.state().activeWorld, null)
})

t.test('route prefix', async (t) => {
  const s = await standin(t, { routePrefix: 'foundry', activeWorld: 'world-one' })
  t.match(s.url, /\/foundry\/$/)
  const origin = new URL(s.url).origin
  t.equal((await get(origin + '/join')).status, 404, 'nothing outside the prefix')
  t.equal((await get(origin + '/foundry')).headers.get('location'), '/foundry/')
  const root = await get(s.url)
  t.equal(root.headers.get('location'), '/foundry/join')
  t.match(root.headers.get('set-cookie') ?? '', /Path=\/foundry\/;/)
  const cookie = cookieOf(root)
  const shell = await (await get(s.url + 'join', cookie)).text()
  t.match(shell, /src="\/foundry\/scripts\/join\.js"/)
  const ok = await post(s.url + 'join', JSON.stringify({ userid: PLAYER.id, password: '', action: 'join' }), 'application/json', cookie)
  t.same(await ok.json(), { status: 'success', message: 'JOIN.LoginSuccess', redirect: '/foundry/game' })
  t.equal((await get(origin + '/foundry/socket.io/?EIO=4&transport=polling')).status, 200, 'socket.io lives under the prefix')
  t.equal((await get(origin + '/socket.io/?EIO=4&transport=polling')).status, 404)
})
