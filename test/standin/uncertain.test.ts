// The stand-in's variants for what real Foundry may do either way (issue 8
// §2, foundry.md marks them (?)): which key POST /join reads, the join
// answer's redirect, v14's administrator user name, a failing world launch,
// migration on any launch that bypasses the dialog, and a canvas that needs
// WebGL. Each variant is checked here; test/e2e/foundry-uncertain.test.ts
// drives the service through them.
import t from 'tap'
import { launchChromium, resolveChromium } from '../../lib/browser/chromium.ts'
import { startFoundryStandin, type StandinOptions } from '../../support/foundry/standin.ts'
import { GM, fileBrowser, freshPage, lastError, loginWithForm, makeWorld, until, waitReady } from '../../support/foundry/browser.ts'

// One Chromium for the file; each test makes its page in a context of its own.
const browser = await fileBrowser(t)

async function standin (t: { teardown: (fn: () => unknown) => void }, opts: Partial<StandinOptions> = {}) {
  const s = await startFoundryStandin({ worlds: [makeWorld('world-one')], activeWorld: 'world-one', gameReadyDelayMs: 100, canvasDelayMs: 50, ...opts })
  t.teardown(() => s.close())
  return s
}

async function session (url: string): Promise<string> {
  const res = await fetch(url, { redirect: 'manual' })
  return /session=[0-9a-f]+/.exec(res.headers.get('set-cookie') ?? '')![0]
}

async function postJoin (url: string, cookie: string, body: Record<string, unknown>): Promise<{ status: number, text: string }> {
  const res = await fetch(url + 'join', { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify(body) })
  return { status: res.status, text: await res.text() }
}

t.test('joinKey: the key POST /join reads, whatever the page shows', async (t) => {
  for (const [version, joinKey, other] of [['14.367', 'userid', 'userId'], ['14.365', 'userId', 'userid']] as const) {
    const s = await standin(t, { version, joinKey })
    const cookie = await session(s.url + 'join')
    const wrong = await postJoin(s.url, cookie, { [other]: GM.id, password: GM.password, action: 'join' })
    t.same(wrong, { status: 401, text: 'JOIN.ErrorUserDoesNotExist' }, `${version} reading ${joinKey}: ${other} is ignored`)
    const both = await postJoin(s.url, cookie, { username: GM.name, userid: GM.id, userId: GM.id, password: GM.password, action: 'join' })
    t.equal(both.status, 200, `${version} reading ${joinKey}: both keys log in`)
  }
})

t.test('joinRedirect: prefixed (default), unprefixed or relative', async (t) => {
  for (const [joinRedirect, expected] of [[undefined, '/foundry/game'], ['unprefixed', '/game'], ['relative', 'game']] as const) {
    const s = await standin(t, { routePrefix: 'foundry', ...(joinRedirect !== undefined ? { joinRedirect } : {}) })
    const cookie = await session(s.url + 'join')
    const res = await postJoin(s.url, cookie, { userid: GM.id, password: GM.password, action: 'join' })
    t.equal(JSON.parse(res.text).redirect, expected, String(joinRedirect ?? 'prefixed'))
  }
  // Behind the prefix, an unprefixed /game is not Foundry's.
  const s = await standin(t, { routePrefix: 'foundry' })
  t.equal((await fetch(new URL('/game', s.url))).status, 404)
})

t.test('v14 administrator user: /auth asks for a user name too', async (t) => {
  for (const required of [true, false]) {
    const s = await standin(t, { version: '14.367', activeWorld: null, adminPassword: 'admin-pw', adminUsername: 'root', adminUsernameRequired: required })
    const { page } = await freshPage(t, browser)
    await page.goto(s.url)
    t.match(page.url(), /\/auth$/)
    t.ok(await page.$('#setup-authentication #auth-username[name=adminUsername]'), 'the user name field')
    await page.type('#auth-password', 'admin-pw')
    await Promise.all([page.waitForNavigation(), page.click('#setup-authentication button[type=submit]')])
    if (required) {
      t.match(page.url(), /\/auth$/, 'required: the password alone is refused')
      t.equal(await page.$eval('#auth-error', (e) => e.textContent), 'ERROR.InvalidAdminKey')
      await page.type('#auth-username', 'root')
      await page.type('#auth-password', 'admin-pw')
      await Promise.all([page.waitForNavigation(), page.click('#setup-authentication button[type=submit]')])
    }
    t.match(page.url(), /\/setup$/, `${required ? 'with the user name' : 'optional: the password alone'}: admin`)
  }
  const v13 = await standin(t, { version: '13.351', activeWorld: null, adminPassword: 'admin-pw', adminUsername: 'root' })
  const { page } = await freshPage(t, browser)
  await page.goto(v13.url)
  t.equal(await page.$('#auth-username'), null, 'v13 has no user name field')
})

t.test('a launch that fails after it started: SETUP.WorldLaunchFailure with the reason', async (t) => {
  const s = await standin(t, { activeWorld: null, launchDelayMs: 200, worlds: [makeWorld('world-one', [GM], { launchFailure: 'System "pf2e" is not installed' })] })
  const { page } = await freshPage(t, browser)
  await page.goto(s.url)
  await page.waitForSelector('#worlds-list li[data-package-id=world-one] a.control.play')
  await page.evaluate('document.querySelector("#worlds-list li[data-package-id=world-one] a.control.play").click()')
  t.equal(await until(async () => await lastError(page), 20_000, 'error toast'), 'SETUP.WorldLaunchFailure: System "pf2e" is not installed')
  t.match(s.state(), { activeWorld: null, launching: null })
})

t.test('any launch that bypasses the setup page\'s dialog migrates an old world', async (t) => {
  const s = await standin(t, { activeWorld: null, launchDelayMs: 100, worlds: [makeWorld('world-one', [GM], { needsMigration: true })] })
  const cookie = await session(s.url)
  const res = await fetch(s.url + 'setup', { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ action: 'launchWorld', world: 'world-one' }) })
  t.equal(res.status, 200)
  await until(() => s.state().activeWorld === 'world-one', 20_000, 'launched')
  t.same(s.state().migratedWorlds, ['world-one'], 'migrated without asking')
})

t.test('/game with the canvas on needs WebGL', async (t) => {
  const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
  // No GPU and no software rasterizer: no WebGL at all.
  const noGl = await launchChromium({ ...resolved, args: [...resolved.args.filter((a) => !/swiftshader|use-angle|use-gl/.test(a)), '--disable-gpu', '--disable-software-rasterizer'] })
  t.teardown(async () => { await noGl.close() })
  const withGl = browser
  for (const [b, webgl] of [[noGl, false], [withGl, true]] as const) {
    const s = await standin(t)
    const { page } = await freshPage(t, b)
    await page.goto(s.url)
    await loginWithForm(page, GM.id, GM.password)
    await waitReady(page)
    const report = await until(() => s.canvas[0], 20_000, 'canvas report')
    t.match(report, { userId: GM.id, ready: webgl }, webgl ? 'a WebGL context: the canvas starts' : 'no WebGL: the canvas cannot start')
    t.equal(await page.evaluate('window.canvas.ready'), webgl)
    if (!webgl) t.equal(await lastError(page), 'ERROR.NoWebGL')
  }
  const off = await standin(t)
  const { page } = await freshPage(t, withGl, { noCanvas: true })
  await page.goto(off.url)
  await loginWithForm(page, GM.id, GM.password)
  await waitReady(page)
  t.same(off.canvas, [], 'core.noCanvas: no canvas, no WebGL')
})
