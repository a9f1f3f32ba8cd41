// The v13 join and /game path in real Chromium: late form, GET /join logs
// out, the page's own JSON login, readiness after the skeleton, live user
// activity, core.noCanvas.
import t from 'tap'
import type { Page } from 'puppeteer-core'
import { startFoundryStandin, type StandinOptions } from '../../support/foundry/standin.ts'
import { ASSISTANT, GM, GM2, PLAYER, fileBrowser, freshPage, isReady, lastError, loginWithForm, makeWorld, until, waitReady } from '../../support/foundry/browser.ts'

type W = Window & { game: any, Hooks: any, canvas: any }

t.test('v13 join and game', async (t) => {
  const browser = await fileBrowser(t)
  t.jobs = 4

  async function standin (t: { teardown: (fn: () => unknown) => void }, opts: Partial<StandinOptions> = {}) {
    const s = await startFoundryStandin({ worlds: [makeWorld('world-one')], activeWorld: 'world-one', ...opts })
    t.teardown(() => s.close())
    return s
  }

  t.test('the join form is built late by script', async (t) => {
    const s = await standin(t, { joinRenderDelayMs: 1500, activeUserIds: [GM2.id] })
    const { page } = await freshPage(t, browser)
    // Recorded inside the page at DOMContentLoaded itself: reading it from
    // Node afterwards would race the render delay on a loaded machine.
    await page.evaluateOnNewDocument(() => {
      document.addEventListener('DOMContentLoaded', () => {
        (window as unknown as { formAtDcl: boolean }).formAtDcl = document.querySelector('#join-game-form') !== null
      })
    })
    const res = await page.goto(s.url, { waitUntil: 'domcontentloaded' })
    t.match(page.url(), /\/join$/, '/ → /join')
    const html = await res!.text()
    t.notMatch(html, /<select|<form|name="password"/, 'no form in the HTML')
    t.equal(await page.evaluate(() => (window as unknown as { formAtDcl?: boolean }).formAtDcl), false, 'no form at DOMContentLoaded')
    t.equal(await page.$eval('header#main-header > h1', (h) => h.textContent), 'Title of world-one')
    const cookie = await page.evaluate(() => document.cookie)
    t.match(cookie, /^session=[0-9a-f]{24}$/, 'the session cookie is readable from the page')

    await page.waitForSelector('#join-game-form select[name=userid]', { timeout: 5000 })
    t.ok(await page.$('#join-game-setup input[name=adminPassword]'), 'return-to-setup form')
    t.ok(await page.$('#join-game-form button[name=join]'))
    const options = await page.$$eval('select[name=userid] option', (os) => os.map((o) => ({ v: (o as HTMLOptionElement).value, text: o.textContent, disabled: (o as HTMLOptionElement).disabled })))
    t.same(options.filter((o) => o.v !== ''), [
      { v: GM.id, text: GM.name, disabled: false },
      { v: PLAYER.id, text: PLAYER.name, disabled: false },
      { v: GM2.id, text: GM2.name, disabled: true },
      { v: ASSISTANT.id, text: ASSISTANT.name, disabled: false },
      { v: 'eeeeeeeeeeeeeee5', text: 'Banned', disabled: false }
    ], 'option value = id, text = name, active users disabled')
    const users = await page.evaluate((gmId) => {
      const g = (window as unknown as W).game
      return { size: g.users.size, byName: g.users.getName('Player One')?.id, byId: g.users.get(gmId)?.name, contents: g.users.contents.length, iter: [...g.users].map((u: any) => u.id).length }
    }, GM.id)
    t.same(users, { size: 5, byName: PLAYER.id, byId: GM.name, contents: 5, iter: 5 }, 'game.users is a Collection')

    // Live activity: re-render keeps typed values, clears a user who became active.
    await page.select('select[name=userid]', PLAYER.id)
    await page.type('#join-game-form input[name=password]', 'typed')
    s.setUserActive(GM2.id, false)
    await page.waitForSelector(`select[name=userid] option[value="${GM2.id}"]:not([disabled])`, { timeout: 3000 })
    t.equal(await page.$eval('select[name=userid]', (e) => (e as HTMLSelectElement).value), PLAYER.id, 'selection kept')
    s.setUserActive(PLAYER.id, true)
    await page.waitForSelector(`select[name=userid] option[value="${PLAYER.id}"][disabled]`, { timeout: 3000 })
    t.equal(await page.$eval('select[name=userid]', (e) => (e as HTMLSelectElement).value), '', 'a user who became active is cleared')
    t.equal(await page.$eval('#join-game-form input[name=password]', (e) => (e as HTMLInputElement).value), 'typed', 'typed password kept')

    // A native form submission bypasses the page's handler: it never logs in.
    await page.select('select[name=userid]', GM.id)
    await page.$eval('#join-game-form input[name=password]', (e, pw) => { (e as HTMLInputElement).value = pw }, GM.password)
    await Promise.all([
      page.waitForNavigation(),
      page.evaluate(() => { (document.getElementById('join-game-form') as HTMLFormElement).submit() })
    ])
    t.match(page.url(), /\/join\?/, 'the form has no action: a native submit just reloads /join')
    t.same(s.joins, [], 'no login happened')
    const urlencoded = await page.evaluate(async (id, pw) => {
      const r = await fetch('/join', { method: 'POST', body: new URLSearchParams({ userid: id, password: pw, action: 'join' }) })
      return r.status
    }, GM.id, GM.password)
    t.equal(urlencoded, 400, 'an urlencoded POST /join from the page → 400')
    const noAction = await page.evaluate(async (id, pw) => {
      const r = await fetch('/join', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userid: id, password: pw }) })
      return r.status
    }, GM.id, GM.password)
    t.equal(noAction, 400, 'a JSON POST /join without its action → 400')
    t.same(s.joins, [], 'still no login')
  })

  t.test('login through the page; skeleton before ready; globals', async (t) => {
    const s = await standin(t, { gameReadyDelayMs: 1500 })
    const { page } = await freshPage(t, browser)
    await page.goto(s.url + 'join')
    const cookie = await page.evaluate(() => document.cookie)

    // Wrong password: the bare key as an error, no navigation.
    await page.waitForSelector('select[name=userid]')
    await page.select('select[name=userid]', GM.id)
    await page.type('#join-game input[name=password]', 'wrong')
    await page.click('#join-game button[name=join]')
    await until(async () => await lastError(page), 20_000, 'error notification')
    t.equal(await lastError(page), 'JOIN.ErrorInvalidPassword')
    t.match(page.url(), /\/join$/)
    await page.$eval('#join-game input[name=password]', (e) => { (e as HTMLInputElement).value = '' })

    const before = Date.now()
    await loginWithForm(page, GM.id, GM.password)
    const navMs = Date.now() - before
    t.match(page.url(), /\/game$/)
    t.ok(navMs >= 450, `redirect after ~500 ms (${navMs} ms)`)
    t.equal(await page.evaluate(() => document.cookie), cookie, 'the cookie did not change on join')
    const early = await page.evaluate(() => {
      const w = window as unknown as W
      w.Hooks.once('ready', () => { (window as any).readyHookSawReady = w.game.ready })
      return {
        body: document.body.className,
        skeleton: ['interface', 'ui-left', 'sidebar', 'hotbar', 'board'].every((id) => document.getElementById(id) !== null),
        ready: w.game.ready
      }
    })
    t.same(early, { body: 'vtt game system-dnd5e', skeleton: true, ready: false }, 'skeleton present while game.ready is false')
    await waitReady(page)
    const g = await page.evaluate(() => {
      const { game, canvas } = window as unknown as W
      return {
        hook: (window as any).readyHookSawReady,
        user: { id: game.user.id, name: game.user.name, role: game.user.role, isGM: game.user.isGM },
        world: game.world,
        system: game.system,
        version: game.version,
        release: { generation: game.release.generation, build: game.release.build, version: game.release.version },
        users: game.users.size,
        canvas: canvas.ready
      }
    })
    t.same(g, {
      hook: true,
      user: { id: GM.id, name: GM.name, role: 4, isGM: true },
      world: { id: 'world-one', title: 'Title of world-one' },
      system: { id: 'dnd5e', title: 'Dungeons & Dragons Fifth Edition', version: '5.0.4' },
      version: '13.351',
      release: { generation: 13, build: 351, version: '13.351' },
      users: 5,
      canvas: true
    }, 'game globals; ready hook called after game.ready')
    t.same(s.state().activeUsers, [GM.id])
    const posted = s.requests.find((r) => r.method === 'POST' && r.path === '/join' && s.joins.length > 0 && (r.body as any)?.password === GM.password)
    t.same(posted?.body, { userid: GM.id, password: GM.password, action: 'join' }, 'the page posts JSON with userid')
    t.match(posted?.contentType, /^application\/json/)

    // GET /join logs the browser out.
    await page.goto(s.url + 'join')
    await until(() => s.state().activeUsers.length === 0, 20_000, 'user inactive')
    const back = await page.goto(s.url + 'game')
    t.match(page.url(), /\/join$/, '/game after visiting /join → /join')
    t.equal(back?.status(), 200)
  })

  t.test('second login of an active user; noCanvas; assistant', async (t) => {
    const s = await standin(t, { gameReadyDelayMs: 200 })
    const a = await freshPage(t, browser, { noCanvas: true })
    await a.page.goto(s.url)
    await loginWithForm(a.page, PLAYER.id, '')
    await waitReady(a.page)
    t.equal(await a.page.evaluate(() => (window as unknown as W).canvas.ready), false, 'core.noCanvas: canvas.ready stays false')

    const b = await freshPage(t, browser)
    await b.page.goto(s.url)
    await b.page.waitForSelector(`select[name=userid] option[value="${PLAYER.id}"][disabled]`)
    // The option is disabled; a driver sets the value and dispatches change.
    await b.page.$eval('select[name=userid]', (el, id) => { (el as HTMLSelectElement).value = id; el.dispatchEvent(new Event('change')) }, PLAYER.id)
    await Promise.all([b.page.waitForNavigation(), b.page.click('#join-game button[name=join]')])
    await waitReady(b.page)
    t.pass('a second login of an already active user is allowed')
    t.equal(await isReady(a.page), true, 'the first browser stays in')
    t.equal(s.joins.filter((j) => j.ok && j.userId === PLAYER.id).length, 2)

    const c = await freshPage(t, browser)
    await c.page.goto(s.url)
    await loginWithForm(c.page, ASSISTANT.id, 'a')
    await waitReady(c.page)
    t.same(await c.page.evaluate(() => ({ role: (window as unknown as W).game.user.role, isGM: (window as unknown as W).game.user.isGM })), { role: 3, isGM: true })
    t.same(s.state().activeUsers, [PLAYER.id, ASSISTANT.id].sort())
  })

  t.test('not joined: /game → /join; unknown cookie gets a new one', async (t) => {
    const s = await standin(t)
    const { page, context } = await freshPage(t, browser)
    const origin = new URL(s.url)
    await context.setCookie({ name: 'session', value: '0123456789abcdef01234567', domain: origin.hostname, path: '/' })
    await page.goto(s.url + 'game')
    t.match(page.url(), /\/join$/)
    const cookie = await page.evaluate(() => document.cookie)
    t.notMatch(cookie, /0123456789abcdef01234567/, 'an unknown session id is replaced')
    const res = await page.evaluate(async (id) => {
      const r = await fetch('/join', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userId: id, password: '', action: 'join' }) })
      return [r.status, await r.text()]
    }, PLAYER.id)
    t.same(res, [401, 'JOIN.ErrorUserDoesNotExist'], 'v14 key on v13 from the page')
  })
})

export type { Page }
