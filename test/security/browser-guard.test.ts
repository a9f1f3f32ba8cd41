// The URL policy inside the session's browser: every request (redirects and
// page scripts included) goes through the request guard, and the address
// Chromium actually connected to is checked on every response (DNS
// rebinding). Loopback only: `localhost` plays the rebinding host, since
// the injected resolver calls it public while Chromium resolves it itself.
import t from 'tap'
import http from 'node:http'
import type { Browser } from 'puppeteer-core'
import { launchChromium, resolveChromium } from '../../lib/browser/chromium.js'
import { preparePage } from '../../lib/browser/page-setup.js'
import { createUrlPolicy, type Resolver, type UrlPolicyMode } from '../../lib/access/url-policy.js'
import { GM, eventually, foundry, listSessions, startSession } from '../e2e/fixtures.js'
import { build, expectError } from '../helper.js'

type Tap = { teardown: (fn: () => unknown) => void }

/** `localhost` is public to Node's policy; Chromium still connects to 127.0.0.1. */
const rebinding: Resolver = async (host) => {
  if (host === 'localhost') return ['93.184.216.34']
  throw new Error(`ENOTFOUND ${host}`)
}

async function server (t: Tap, handler: http.RequestListener): Promise<{ port: number, hits: string[] }> {
  const hits: string[] = []
  const s = http.createServer((req, res) => { hits.push(req.url ?? ''); handler(req, res) })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { s.closeAllConnections(); s.close() })
  return { port: (s.address() as { port: number }).port, hits }
}

async function browser (t: Tap): Promise<Browser> {
  const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
  const b = await launchChromium(resolved)
  t.teardown(async () => { await b.close().catch(() => {}) })
  return b
}

async function guardedPage (t: Tap, b: Browser, mode: UrlPolicyMode, resolve?: Resolver) {
  const policy = createUrlPolicy({ mode, ...(resolve !== undefined ? { resolve } : {}) })
  const context = await b.createBrowserContext()
  t.teardown(async () => { await context.close().catch(() => {}) })
  const page = await context.newPage()
  const prepared = await preparePage(page, {
    blockResources: [],
    noCanvas: false,
    allowRequest: policy.allowRequest,
    allowAddress: (ip) => policy.allowAddress(ip)
  })
  return { page, prepared }
}

t.test('lib: the request guard and the address check in Chromium', async (t) => {
  const b = await browser(t)

  t.test('default: a redirect to a link-local (metadata) address is blocked before it leaves', async (t) => {
    const site = await server(t, (req, res) => {
      if (req.url === '/redirect') { res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }); res.end(); return }
      res.setHeader('content-type', 'text/html')
      res.end('<p>ok</p>')
    })
    const { page, prepared } = await guardedPage(t, b, 'default')
    const ok = await page.goto(`http://127.0.0.1:${site.port}/`)
    t.equal(ok?.status(), 200, 'loopback is allowed in default mode')
    await t.rejects(page.goto(`http://127.0.0.1:${site.port}/redirect`), /ERR_BLOCKED_BY_CLIENT/, 'the redirect hop was refused')
    await page.goto(`http://127.0.0.1:${site.port}/`)
    const fetched = await page.evaluate(async () => {
      const out: string[] = []
      for (const u of ['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/', 'http://metadata.google.internal/']) {
        try { await fetch(u); out.push('reached ' + u) } catch { out.push('failed') }
      }
      return out
    })
    t.same(fetched, ['failed', 'failed', 'failed'], 'page scripts cannot reach them either')
    t.ok(prepared.blocked() >= 4, `blocked ${prepared.blocked()} requests`)
  })

  t.test('public-only: a redirect from an allowed host to loopback never reaches loopback', async (t) => {
    const internal = await server(t, (_req, res) => { res.end('secret') })
    const site = await server(t, (_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${internal.port}/secret` })
      res.end()
    })
    const { page } = await guardedPage(t, b, 'public-only', rebinding)
    await t.rejects(page.goto(`http://localhost:${site.port}/`))
    t.same(internal.hits, [], 'the internal server saw no request')
  })

  t.test('public-only: a WebSocket to a refused address closes the page', async (t) => {
    // WebSocket handshakes never pause in the Fetch domain; the socket's URL
    // is checked as it is created instead.
    const { page } = await guardedPage(t, b, 'public-only', rebinding)
    await page.goto('data:text/html,<script>new WebSocket("ws://127.0.0.1:9/internal")</script>')
    t.ok(await eventually(() => page.isClosed(), 20_000), 'the page was closed')
  })

  t.test('public-only: DNS rebinding (Node saw a public address, Chromium connected to loopback) closes the page', async (t) => {
    const site = await server(t, (req, res) => {
      res.setHeader('content-type', 'text/html')
      res.end(req.url === '/' ? '<script>setTimeout(() => fetch("/exfiltrate"), 50)</script>' : 'x')
    })
    const { page } = await guardedPage(t, b, 'public-only', rebinding)
    await page.goto(`http://localhost:${site.port}/`).catch(() => {})
    t.ok(await eventually(() => page.isClosed(), 20_000), 'the page was closed')
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.notOk(site.hits.includes('/exfiltrate'), 'no request left the page after the refused response')
  })
})

t.test('service: public-only refuses a Foundry that Chromium reaches on loopback', async (t) => {
  const { standin } = await foundry(t)
  const { app } = await build(t, { FOUNDRY_URL_POLICY: 'public-only' }, { resolve: rebinding })

  const port = new URL(standin.url).port
  const res = await startSession(app, { foundryUrl: `http://localhost:${port}/`, username: GM.name, password: GM.password })
  expectError(t, res, 403, 'FOUNDRY_URL_REFUSED')
  t.match(res.json(), { stage: 'reach', error: /FOUNDRY_URL_POLICY/ })
  t.notOk(standin.joins.length > 0, 'no login reached the stand-in')
  // The first request (and the hops of its redirects, whose addresses CDP
  // reports only with the next request) reach it blind; the page is closed
  // at the first response, before any form is posted.
  t.ok(standin.requests.every((r) => r.method === 'GET'), `only blind GETs reached it: ${standin.requests.map((r) => r.path).join(', ')}`)
  t.ok(standin.requests.length <= 3, `${standin.requests.length} requests`)
  const list = await listSessions(app)
  t.same([list.activeSessions.length, list.pendingSessions.length], [0, 0], 'no session')
  t.ok(await eventually(() => app.browserPool.health().contexts === 0), 'no browser context left')
})

t.test('service: default policy, a Foundry URL that redirects to the cloud metadata address', async (t) => {
  const { app } = await build(t)
  const site = await server(t, (_req, res) => {
    res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' })
    res.end()
  })
  const res = await startSession(app, { foundryUrl: `http://127.0.0.1:${site.port}/`, username: GM.name, password: GM.password })
  expectError(t, res, 403, 'FOUNDRY_URL_REFUSED')
  t.match(res.json(), { stage: 'reach', error: /FOUNDRY_URL_POLICY refuses/ })
  t.same(site.hits, ['/'], 'the allowed first hop was asked once')
  const list = await listSessions(app)
  t.same([list.activeSessions.length, list.pendingSessions.length], [0, 0], 'no session')
  t.match(list.endedSessions, [{ status: 'failed', statusReason: /FOUNDRY_URL_POLICY/ }])
  t.ok(await eventually(() => app.browserPool.health().contexts === 0), 'no browser context left')
})
