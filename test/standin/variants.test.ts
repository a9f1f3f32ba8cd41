// Join-page variants in real Chromium: v11 whole form, v14.367 username
// field with the userId key, and a route prefix end to end.
import t from 'tap'
import { startFoundryStandin } from '../../support/foundry/standin.ts'
import { startRelayStandin } from '../../support/foundry/relay.ts'
import { GM, GM2, PLAYER, fileBrowser, freshPage, lastError, loginWithForm, makeWorld, until, waitReady } from '../../support/foundry/browser.ts'

type W = Window & { game: any }

t.test('variants', async (t) => {
  const browser = await fileBrowser(t)
  t.jobs = 3

  t.test('v11: form#join-game posts the whole form; skeleton built by script', async (t) => {
    const s = await startFoundryStandin({ version: '11.315', worlds: [makeWorld('world-one')], activeWorld: 'world-one', gameReadyDelayMs: 100 })
    t.teardown(() => s.close())
    const { page } = await freshPage(t, browser, { noCanvas: true })
    await page.goto(s.url)
    await page.waitForSelector('form#join-game select[name=userid]')
    t.ok(await page.$('form#join-game input[name=adminPassword]'), 'admin password in the same form')
    t.equal(await page.$('#join-game-form'), null, 'no v12 login form')
    await loginWithForm(page, GM.id, GM.password)
    const post = s.requests.find((r) => r.method === 'POST' && r.path === '/join')
    t.same(post?.body, { userid: GM.id, password: GM.password, adminPassword: '', action: 'join' }, 'whole form posted')
    const html = s.requests.find((r) => r.path === '/game')
    t.ok(html)
    await waitReady(page)
    t.same(await page.evaluate(() => [(window as unknown as W).game.release.generation, (window as unknown as W).game.version, !!document.getElementById('sidebar')]), [11, '11.315', true])
    const raw = await (await fetch(s.url + 'game', { headers: { cookie: (await page.cookies())[0]!.name + '=' + (await page.cookies())[0]!.value } })).text()
    t.notMatch(raw, /id="sidebar"/, 'v11 has no static skeleton')
  })

  t.test('v14.367: username text field, POST key userId', async (t) => {
    const s = await startFoundryStandin({ version: '14.367', worlds: [makeWorld('world-one')], activeWorld: 'world-one', gameReadyDelayMs: 100, activeUserIds: [GM2.id] })
    t.teardown(() => s.close())
    const { page } = await freshPage(t, browser, { noCanvas: true })
    await page.goto(s.url)
    await page.waitForSelector('input#join-username[name=username]')
    t.equal(await page.$('select[name=userid]'), null, 'no select on 14.367')
    t.ok(await page.$('#join-password'))
    t.ok(await page.$(`.user-autocomplete li.disabled[data-user-id="${GM2.id}"]`), 'active users greyed')
    // The select-based driver fails here.
    await t.rejects(page.waitForSelector('select[name=userid]', { timeout: 300 }))
    await page.type('#join-username', 'nobody')
    await page.click('#join-game-form button[name=join]')
    await until(async () => await lastError(page), 3000, 'client-side error')
    t.equal(await lastError(page), 'JOIN.ErrorMustSelectUser')
    await page.$eval('#join-username', (e) => { (e as HTMLInputElement).value = '' })
    await page.type('#join-username', GM.name)
    await page.type('#join-password', GM.password)
    await Promise.all([page.waitForNavigation(), page.click('#join-game-form button[name=join]')])
    await waitReady(page)
    const post = s.requests.find((r) => r.method === 'POST' && r.path === '/join')
    t.same(post?.body, { userId: GM.id, password: GM.password, action: 'join' })
    t.equal(await page.evaluate(() => (window as unknown as W).game.version), '14.367')
  })

  t.test('heavyGame: scripts, images and retained heap before ready', async (t) => {
    const s = await startFoundryStandin({ worlds: [makeWorld('world-one')], activeWorld: 'world-one', gameReadyDelayMs: 100, heavyGame: { scriptBytes: 1024 * 1024, images: 2, canvasMs: 100 } })
    t.teardown(() => s.close())
    const { page } = await freshPage(t, browser)
    await page.goto(s.url)
    await loginWithForm(page, PLAYER.id, '')
    await waitReady(page, 30000)
    const r = await page.evaluate(() => ({ images: document.images.length, data: (window as unknown as W).game.heavyData?.length ?? 0, canvas: (window as any).canvas.ready }))
    t.equal(r.images, 2)
    t.ok(r.data > 1000, `retained documents (${r.data})`)
    t.equal(r.canvas, true)
    t.ok(s.requests.some((x) => x.path === '/scripts/heavy.js' && x.status === 200))
  })

  t.test('route prefix end to end', async (t) => {
    const relay = await startRelayStandin()
    t.teardown(() => relay.close())
    const s = await startFoundryStandin({ routePrefix: 'foundry', worlds: [makeWorld('world-one')], activeWorld: null, gameReadyDelayMs: 100, launchDelayMs: 200, relayUrl: relay.url })
    t.teardown(() => s.close())
    const { page } = await freshPage(t, browser, { noCanvas: true })
    await page.goto(s.url)
    t.match(page.url(), /\/foundry\/setup$/)
    await s.launchWorld('world-one')
    await page.goto(s.url)
    t.match(page.url(), /\/foundry\/join$/)
    await loginWithForm(page, GM.id, GM.password)
    t.match(page.url(), /\/foundry\/game$/)
    await waitReady(page)
    const c = await relay.waitFor((c) => c.id === `foundry-${GM.id}`, 5000)
    t.ok(c.authed)
    t.ok(s.requests.every((r) => r.path.startsWith('/foundry/')), 'every request under the prefix')
    const cookies = await page.cookies()
    t.equal(cookies.find((c) => c.name === 'session')?.path, '/foundry/')
    await s.shutdownWorld()
    await until(() => /\/foundry\/setup$/.test(page.url()), 5000, 'URL /foundry/setup')
    t.ok(PLAYER)
  })
})
