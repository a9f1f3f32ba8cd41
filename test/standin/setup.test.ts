// /auth and /setup in real Chromium: the native admin form, the world list
// with its hover-hidden play link, launch → /join, overlays that swallow
// clicks, the migration dialog, the licence page.
import t from 'tap'
import type { Page } from 'puppeteer-core'
import { startFoundryStandin, type StandinOptions } from '../../support/foundry/standin.ts'
import { GM, fileBrowser, freshPage, makeWorld, until } from '../../support/foundry/browser.ts'

const launchPosts = (s: { requests: Array<{ method: string, path: string, body?: unknown }> }) =>
  s.requests.filter((r) => r.method === 'POST' && r.path === '/setup' && (r.body as { action?: string } | undefined)?.action === 'launchWorld')

async function tile (page: Page, id: string) {
  return await page.waitForSelector(`#worlds-list li.package.world[data-package-id="${id}"]`, { timeout: 5000 })
}

t.test('setup and auth', async (t) => {
  const browser = await fileBrowser(t)
  t.jobs = 4
  async function standin (t: { teardown: (fn: () => unknown) => void }, opts: Partial<StandinOptions> = {}) {
    const s = await startFoundryStandin({ worlds: [makeWorld('world-one'), makeWorld('world-two')], launchDelayMs: 400, ...opts })
    t.teardown(() => s.close())
    return s
  }

  t.test('v13: hover-hidden play link, launch → /join', async (t) => {
    const s = await standin(t)
    const { page } = await freshPage(t, browser)
    await page.goto(s.url)
    t.match(page.url(), /\/setup$/)
    const li = await tile(page, 'world-two')
    t.equal(await li!.$eval('h3.package-title', (h) => h.textContent), 'Title of world-two')
    const play = await li!.$('a.control.play[data-action=worldLaunch]')
    t.ok(play)
    t.equal(await play!.evaluate((a) => getComputedStyle(a).display), 'none', 'v13 hides the play link until hover')
    await t.rejects(play!.click(), 'a hidden play link cannot be clicked')
    await li!.hover()
    t.not(await play!.evaluate((a) => getComputedStyle(a).display), 'none', 'visible on hover')
    await Promise.all([
      page.waitForNavigation({ timeout: 5000 }),
      play!.click()
    ])
    // /game → /join once the launch completes
    await until(() => /\/join$/.test(page.url()), 20_000, 'URL /join')
    t.equal(s.state().activeWorld, 'world-two')
    await page.waitForSelector('#join-game-form select[name=userid]', { timeout: 5000 })
    t.same(launchPosts(s).map((r) => r.body), [{ action: 'launchWorld', world: 'world-two' }])
  })

  t.test('admin password: /auth native form first', async (t) => {
    const s = await standin(t, { adminPassword: 'hunter2', version: '14.365' })
    const { page } = await freshPage(t, browser)
    await page.goto(s.url)
    t.match(page.url(), /\/auth$/)
    const status = await page.evaluate(async () => {
      const r = await fetch('/setup', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'launchWorld', world: 'world-one' }) })
      return r.status
    })
    t.equal(status, 403, 'launch before admin auth → 403')
    await page.type('#setup-authentication input[name=adminPassword]', 'wrong')
    await Promise.all([page.waitForNavigation(), page.click('#setup-authentication button[type=submit]')])
    t.match(page.url(), /\/auth$/, 'wrong password stays on /auth')
    t.match(await page.$eval('#auth-error', (e) => e.textContent), /InvalidAdminKey/)
    const post = s.requests.find((r) => r.method === 'POST' && r.path === '/auth')
    t.match(post?.contentType, /^application\/x-www-form-urlencoded/)
    t.same(post?.body, { adminPassword: 'wrong', action: 'adminAuth' })

    await page.type('#setup-authentication input[name=adminPassword]', 'hunter2')
    await Promise.all([page.waitForNavigation(), page.click('#setup-authentication button[type=submit]')])
    t.match(page.url(), /\/setup$/)
    const li = await tile(page, 'world-one')
    const play = await li!.$('a.control.play')
    t.not(await play!.evaluate((a) => getComputedStyle(a).display), 'none', 'v14 shows the play link')
    await play!.click()
    await until(() => /\/join$/.test(page.url()), 20_000, 'URL /join')
    t.equal(s.state().activeWorld, 'world-one')
  })

  t.test('telemetry overlay swallows clicks; migration dialog; locked', async (t) => {
    const s = await standin(t, {
      version: '14.365',
      telemetryPrompt: true,
      tourPrompt: true,
      worlds: [makeWorld('old', [GM], { needsMigration: true }), makeWorld('locked', [GM], { locked: true }), makeWorld('fine', [GM])]
    })
    const { page } = await freshPage(t, browser)
    await page.goto(s.url)
    const fine = await tile(page, 'fine')
    await page.waitForSelector('#telemetry-overlay button[data-action=no]')
    const play = (await fine!.$('a.control.play'))!
    const covered = async () => await play.evaluate((a) => {
      const r = a.getBoundingClientRect()
      return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)?.closest('.app-overlay')?.id ?? null
    })
    t.equal(await covered(), 'telemetry-overlay', 'the telemetry overlay covers the play link')
    await play.click()
    await play.evaluate((a) => { (a as HTMLElement).click() })
    await page.click('#telemetry-overlay button[data-action=no]')
    await until(() => s.requests.some((r) => r.method === 'POST' && (r.body as { action?: string } | undefined)?.action === 'telemetry'), 20_000, 'telemetry answer')
    t.equal(await page.$('#telemetry-overlay'), null)
    t.ok(await page.$('.tour-overlay .tour-center-step [data-action=exit]'), 'a tour overlay is still up')
    t.equal(await covered(), 'tour-overlay', 'the tour covers it too')
    await play.click()
    await play.evaluate((a) => { (a as HTMLElement).click() })
    await page.keyboard.press('Escape')
    t.equal(await page.$('.tour-overlay'), null, 'Escape ends the tour')
    t.equal(await covered(), null, 'nothing covers the list any more')

    const locked = await tile(page, 'locked')
    await (await locked!.$('a.control.play'))!.click()
    await until(async () => await page.$('#notifications .notification.error'), 20_000, 'error')
    t.equal(await page.$eval('#notifications .notification.error', (e) => e.textContent), 'PACKAGE.LaunchLocked')
    // That later launch was answered: the clicks made while an overlay was
    // up, pointer or script, would have been posted before it.
    t.same(launchPosts(s).map((r) => (r.body as { world?: string }).world), ['locked'], 'no click reached "fine" while an overlay was up')

    const old = await tile(page, 'old')
    await (await old!.$('a.control.play'))!.click()
    await page.waitForSelector('#migration-overlay button[data-action=yes]')
    t.match(await page.$eval('#migration-overlay', (e) => e.textContent), /World Data Migration/)
    t.equal(launchPosts(s).filter((r) => (r.body as { world?: string }).world === 'old').length, 0, 'nothing posted before the dialog is answered')
    await page.click('#migration-overlay button[data-action=no]')
    t.same(s.state().migratedWorlds, [])

    // A telemetry answer persists: the next load shows no overlay.
    await page.reload()
    // The overlays are added in the same task that renders the list.
    await tile(page, 'fine')
    t.equal(await page.$('#telemetry-overlay'), null, 'telemetry answered once')
    t.equal(await page.$('.tour-overlay'), null, 'tour progress remembered')
  })

  t.test('v14 /players gate on first launch', async (t) => {
    const s = await standin(t, { version: '14.365', playersGate: true })
    const { page } = await freshPage(t, browser)
    await page.goto(s.url)
    const li = await tile(page, 'world-one')
    await (await li!.$('a.control.play'))!.click()
    await until(() => /\/players$/.test(page.url()), 20_000, 'URL /players')
    const joinStatus = await page.evaluate(async () => (await fetch('/join', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userid: 'aaaaaaaaaaaaaaa1', password: 'gm-pass', action: 'join' }) })).status)
    t.equal(joinStatus, 403, 'no login before the gate is passed')
    await Promise.all([page.waitForNavigation(), page.click('#players-config button[data-action=save]')])
    t.match(page.url(), /\/join$/)
    await page.waitForSelector('select[name=userid]')
    await page.goto(s.url)
    t.match(page.url(), /\/join$/, 'the gate is passed once')
  })

  t.test('EULA unsigned → /license everywhere', async (t) => {
    const s = await standin(t, { eulaSigned: false })
    const { page } = await freshPage(t, browser)
    for (const p of ['', 'setup', 'join', 'game']) {
      await page.goto(s.url + p)
      t.match(page.url(), /\/license$/, `/${p} → /license`)
    }
    t.ok(await page.$('body.license #eula-agree'))
  })
})
