// Page tuning (lib/browser/page-setup.ts) through real Chromium against the Foundry
// stand-in's heavy game page: the module still connects with the defaults,
// and each setting has its effect (no image/audio requests, core.noCanvas,
// per-session overrides).
import t from 'tap'
import type { Standin } from '../../support/foundry/standin.ts'
import { fileBrowser, freshPage, loginWithForm, waitReady } from '../../support/foundry/browser.ts'
import { API_KEY, build } from '../helper.ts'
import { GM, foundry as foundryOf, startSession } from '../e2e/fixtures.ts'
import { DEFAULT_PAGE_SETUP, parseBlockResources, preparePage } from '../../lib/browser/page-setup.ts'

// One Chromium for the file; each test makes its page in a context of its own.
const browser = await fileBrowser(t)

const HEAVY = { scriptBytes: 64 * 1024, images: 3, canvasMs: 50 }

async function foundry (t: Parameters<typeof foundryOf>[0]): Promise<Standin> {
  return (await foundryOf(t, { heavyGame: HEAVY })).standin
}

const assetRequests = (s: Standin): string[] => s.requests.map((r) => r.path).filter((p) => /\/assets\/heavy/.test(p))

t.test('parseBlockResources', async (t) => {
  t.same(parseBlockResources('image,media,font'), ['image', 'media', 'font'])
  t.same(parseBlockResources(' image  font '), ['image', 'font'])
  t.same(parseBlockResources('image,image'), ['image'])
  t.same(parseBlockResources(''), [])
  t.same(parseBlockResources('none'), [])
  t.throws(() => parseBlockResources('image,script'), /unknown resource type "script"/)
})

t.test('the service with its default page settings: the module connects, no image or audio is fetched', async (t) => {
  const { app } = await build(t)
  const standin = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().clientId, `foundry-${GM.id}`, 'the REST API module connected')
  t.ok(standin.requests.some((r) => r.path.endsWith('/scripts/heavy.js')), 'the game page loaded its scripts')
  t.same(assetRequests(standin), [], 'no image or audio reached Foundry')
})

t.test('per-session overrides: noCanvas false and blockResources [] load everything', async (t) => {
  const { app } = await build(t)
  const standin = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, body: { noCanvas: false, blockResources: [] } })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().clientId, `foundry-${GM.id}`)
  const assets = assetRequests(standin)
  t.equal(assets.filter((p) => p.endsWith('.bmp')).length, HEAVY.images, 'every image was fetched')
  t.ok(assets.some((p) => p.endsWith('.wav')), 'the audio was fetched')

  const bad = await app.inject({
    method: 'POST',
    url: '/start-session',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    payload: { handshakeToken: 'x', encryptedPassword: 'eA==', blockResources: ['script'] }
  })
  t.equal(bad.statusCode, 400, 'an unknown resource type is refused')
})

t.test('preparePage on a page: core.noCanvas, blocked requests', async (t) => {
  const standin = await foundry(t)
  const { page } = await freshPage(t, browser)
  const prepared = await preparePage(page, DEFAULT_PAGE_SETUP)
  await page.goto(standin.url)
  await loginWithForm(page, GM.id, GM.password)
  await waitReady(page)
  const state = await page.evaluate(() => ({
    noCanvas: window.localStorage.getItem('core.noCanvas'),
    canvasReady: (window as unknown as { canvas?: { ready?: boolean } }).canvas?.ready
  }))
  t.equal(state.noCanvas, 'true', 'core.noCanvas is set before the game boots')
  t.equal(state.canvasReady, false, 'Foundry skipped its canvas')
  t.same(assetRequests(standin), [], 'images and audio never reached Foundry')
  t.ok(prepared.blocked() >= HEAVY.images, `the page's image requests were failed (${prepared.blocked()})`)
  await prepared.detach()
})

t.test('preparePage with nothing to do intercepts nothing', async (t) => {
  const standin = await foundry(t)
  const { page } = await freshPage(t, browser)
  const prepared = await preparePage(page, { blockResources: [], noCanvas: false })
  await page.goto(standin.url)
  await loginWithForm(page, GM.id, GM.password)
  await waitReady(page)
  t.equal(await page.evaluate(() => window.localStorage.getItem('core.noCanvas')), null, 'core.noCanvas left alone')
  t.equal(prepared.blocked(), 0)
  await prepared.detach()
})
