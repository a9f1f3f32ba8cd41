// The live /game socket in real Chromium: shutdown → '/', restart → /join,
// a cut connection reconnects, refused reconnects → /no, server 'reload'.
import t from 'tap'
import type { Page } from 'puppeteer-core'
import { startFoundryStandin, type Standin } from '../../support/foundry/standin.ts'
import { startRelayStandin } from '../../support/foundry/relay.ts'
import { GM, PLAYER, fileBrowser, freshPage, isReady, loginWithForm, makeWorld, until, waitReady } from '../../support/foundry/browser.ts'

t.test('live socket', async (t) => {
  const browser = await fileBrowser(t)
  t.jobs = 3

  async function inGame (t: { teardown: (fn: () => unknown) => void }, s: Standin, userId = PLAYER.id, password = ''): Promise<Page> {
    const { page } = await freshPage(t, browser, { noCanvas: true })
    await page.goto(s.url)
    await loginWithForm(page, userId, password)
    await waitReady(page)
    return page
  }
  async function standin (t: { teardown: (fn: () => unknown) => void }, extra: Record<string, unknown> = {}) {
    const s = await startFoundryStandin({ worlds: [makeWorld('world-one')], activeWorld: 'world-one', gameReadyDelayMs: 100, joinRenderDelayMs: 100, ...extra })
    t.teardown(() => s.close())
    return s
  }

  t.test('shutdownWorld → notice, then / → /setup after 1 s', async (t) => {
    const s = await standin(t)
    const page = await inGame(t, s)
    const at = Date.now()
    await s.shutdownWorld()
    await page.waitForSelector('#notifications .notification.warning.permanent', { timeout: 2000 })
    await until(() => /\/setup$/.test(page.url()), 5000, 'URL /setup')
    t.ok(Date.now() - at >= 900, 'after ~1 s')
    t.ok(s.requests.some((r) => r.path === '/' && r.status === 302), 'went through /')
    t.equal(s.state().activeWorld, null)
  })

  t.test('restart drops sessions: the page reconnects and is sent to /join', async (t) => {
    const s = await standin(t)
    const page = await inGame(t, s)
    const port = new URL(s.url).port
    await s.restart({ downMs: 300 })
    t.equal(new URL(s.url).port, port, 'same port')
    await until(() => /\/join$/.test(page.url()), 8000, 'URL /join')
    await page.waitForSelector('select[name=userid]', { timeout: 5000 })
    t.same(s.state().activeUsers, [])
    await loginWithForm(page, PLAYER.id, '')
    await waitReady(page)
    t.pass('log in again after the restart')
  })

  t.test('cutLiveConnections: reconnect, stay in the game; module reconnects to relay', async (t) => {
    const relay = await startRelayStandin()
    t.teardown(() => relay.close())
    const s = await standin(t, { relayUrl: relay.url })
    const page = await inGame(t, s, GM.id, GM.password)
    await relay.waitFor((c) => c.authed, 5000)
    s.cutLiveConnections()
    await page.waitForSelector('#notifications .notification.error', { timeout: 3000 })
    await until(async () => await page.$('#notifications .notification.info') !== null && s.state().activeUsers.includes(GM.id), 5000, 'reconnected')
    t.match(page.url(), /\/game$/)
    t.equal(await isReady(page), true)
    t.equal(relay.open().length, 1, 'the relay connection is independent of socket.io')
  })

  t.test('refused reconnects → /no; server reload → page reload', async (t) => {
    const s = await standin(t)
    const page = await inGame(t, s)
    const block = s.blockSockets(6500)
    await until(() => /\/no$/.test(page.url()), 12000, 'URL /no')
    t.pass('after 10 failed reconnects the page goes to /no')
    t.ok(s.requests.some((r) => r.path === '/no' && r.status === 404))
    await block

    const p2 = await inGame(t, s, GM.id, GM.password)
    const loads = s.requests.filter((r) => r.path === '/game').length
    s.reloadClients()
    await until(() => s.requests.filter((r) => r.path === '/game').length > loads, 5000, 'reload')
    await waitReady(p2)
    t.pass('reload event reloads /game')
  })
})
