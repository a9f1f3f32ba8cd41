// The egress gate (lib/browser/egress.ts): every connection of a session
// browser leaves through it, so an address the operator refuses is reached
// by no route a page has. Loopback only: the canary listens on 127.0.0.2
// (TCP and UDP), the Foundry stand-in and its relay on 127.0.0.1.
import t from 'tap'
import http from 'node:http'
import dgram from 'node:dgram'
import { connect as netConnect, type AddressInfo } from 'node:net'
import type { Browser } from 'puppeteer-core'
import { EGRESS_BYPASS, egressArgs, launchChromium, resolveChromium } from '../../lib/browser/chromium.ts'
import { createEgressGate, type EgressRefusal } from '../../lib/browser/egress.ts'
import { createUrlPolicy, parseAddressList, type Resolver } from '../../lib/access/url-policy.ts'
import type { SessionEvent } from '../../lib/session/types.ts'
import { GM, eventually, foundry, listSessions, startSession } from '../e2e/fixtures.ts'
import { API_KEY, build, expectError, type TestContext } from '../helper.ts'

type Tap = { teardown: (fn: () => unknown) => void }

const quiet = { info () {}, warn () {}, debug () {} }

/** The canary: every TCP connection, HTTP request, upgrade and UDP datagram it sees. */
async function canary (t: Tap, host = '127.0.0.2', port = 0): Promise<{ url: string, port: number, udpPort: number, hits: string[] }> {
  const hits: string[] = []
  const server = http.createServer((req, res) => { hits.push(`http ${req.url ?? ''}`); res.end('canary') })
  server.on('connection', () => { hits.push('tcp') })
  server.on('upgrade', (req, socket) => { hits.push(`upgrade ${req.url ?? ''}`); socket.destroy() })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve) })
  const udp = dgram.createSocket('udp4')
  udp.on('message', (m) => { hits.push(`udp ${m.length} bytes`) })
  await new Promise<void>((resolve) => { udp.bind(0, host, resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close(); udp.close() })
  const p = (server.address() as AddressInfo).port
  return { url: `http://${host}:${p}`, port: p, udpPort: udp.address().port, hits }
}

/** The probe's report (POST /egress-probe/done), once it is done. */
async function probeDone (requests: Array<{ path: string, body?: unknown }>): Promise<Record<string, string> | undefined> {
  let done: { body?: unknown } | undefined
  await eventually(() => (done = requests.find((r) => r.path === '/egress-probe/done')) !== undefined, 30_000)
  return done?.body as Record<string, string> | undefined
}

const WAYS = ['fetch', 'xhr', 'image', 'websocket', 'eventsource', 'beacon', 'iframe', 'prefetch', 'service-worker', 'webrtc']

/** A session on a stand-in whose /game page runs the egress probe toward the canary. */
async function probedSession (t: Tap & TestContext, env: Record<string, string>) {
  const c = await canary(t)
  const { standin } = await foundry(t, { egressProbe: { canary: c.url, udpPort: c.udpPort } })
  const { app, logs } = await build(t, { PAGE_BLOCK_RESOURCES: 'none', ...env })
  const events: SessionEvent[] = []
  app.sessions.onEvent((e) => { events.push(e) })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  return { app, logs, canary: c, standin, events, res }
}

t.test('a hostile Foundry page reaches a denied address by no route (FOUNDRY_URL_DENY)', async (t) => {
  const { app, logs, canary: c, standin, events, res } = await probedSession(t, { FOUNDRY_URL_DENY: '127.0.0.2' })
  t.equal(res.statusCode, 200, 'the login itself works through the gate')
  const report = await probeDone(standin.requests)
  t.ok(report !== undefined, 'the probe ran every way and reported')
  t.same(Object.keys(report ?? {}).sort(), [...WAYS].sort(), 'every way was tried')
  t.match(report, { 'service-worker': /^registered/ }, `the service worker installed and activated: ${report?.['service-worker'] ?? ''}`)
  // Late stragglers (beacons, retries) get a moment more.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.same(c.hits, [], 'the canary saw no TCP connection, no request and no UDP datagram')
  t.ok(await eventually(() => events.some((e) => e.type === 'egress')), 'the refusals are reported in the session\'s events')
  t.match(events.find((e) => e.type === 'egress'), { type: 'egress', target: `127.0.0.2:${c.port}`, reason: 'deny-list' })
  t.equal(events.filter((e) => e.type === 'egress').length, 1, 'a burst of refusals is one event (at most one per 10 s)')
  const list = await listSessions(app)
  t.equal(list.activeSessions.length, 1, 'the session is reported, not ended')
  const line = logs().split('\n').find((l) => l.includes('egress gate refused a connection'))
  t.match(JSON.parse(line ?? '{}'), { sessionId: list.activeSessions[0]?.id, target: `127.0.0.2:${c.port}`, reason: 'deny-list' }, 'the gate\'s log line names the session, host:port and reason')
  t.notMatch(logs(), /\/fetch|\/sw-install|\/eventsource|token=/, 'no path or query in any log line')
  const metric = await app.metrics.registry.getSingleMetricAsString('foundry_egress_refused_total')
  const n = Number(/foundry_egress_refused_total\{reason="deny-list"[^}]*\} (\d+)/.exec(metric)?.[1] ?? 0)
  t.ok(n >= 8, `refusals counted in /metrics by reason (${n})`)
})

t.test('the same page without the deny list reaches the canary (the test above can fail)', async (t) => {
  const { canary: c, standin, res } = await probedSession(t, {})
  t.equal(res.statusCode, 200)
  await probeDone(standin.requests)
  await eventually(() => c.hits.includes('http /sw-activate'), 5000)
  for (const path of ['/fetch', '/xhr', '/image.png', '/eventsource', '/beacon', '/iframe', '/prefetch', '/sw-install', '/sw-activate']) {
    t.ok(c.hits.includes(`http ${path}`), `reached by ${path.slice(1)}`)
  }
  t.ok(c.hits.includes('upgrade /websocket'), 'reached by a WebSocket')
  // WebRTC: no UDP leaves even here (only proxied connections are allowed,
  // and the gate is an HTTP proxy); the next test shows the probe's STUN
  // does reach the canary from a Chromium without the gate.
  t.notOk(c.hits.some((h) => h.startsWith('udp')), 'no UDP through the gate, deny list or not')
})

t.test('control: the probe\'s STUN over UDP reaches the canary from a Chromium without the gate', async (t) => {
  const c = await canary(t)
  const { standin } = await foundry(t)
  const browser = await launchChromium(await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' }))
  t.teardown(async () => { await browser.close().catch(() => {}) })
  const page = await browser.newPage()
  await page.goto(`${standin.url}egress-probe?canary=${encodeURIComponent(c.url)}&udp=${c.udpPort}`)
  await probeDone(standin.requests)
  t.ok(c.hits.some((h) => h.startsWith('udp')), `the STUN request arrived: ${c.hits.filter((h) => h.startsWith('udp')).join(', ')}`)
})

/** A Chromium whose contexts go through `gate`, as the browser pool launches it. */
async function gatedBrowser (t: Tap, browserProxy: string): Promise<Browser> {
  const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
  const b = await launchChromium({ ...resolved, args: [...resolved.args, ...egressArgs(browserProxy)] })
  t.teardown(async () => { await b.close().catch(() => {}) })
  return b
}

t.test('DNS rebinding: a name that first resolves to an allowed address, then to a denied one, never reaches the denied one', async (t) => {
  // The site on 127.0.0.1 and the canary on 127.0.0.2, same port.
  const siteHits: string[] = []
  const site = http.createServer((req, res) => {
    siteHits.push(req.url ?? '')
    res.setHeader('content-type', 'text/html')
    res.end(req.url === '/' ? '<script>window.results = []; for (let i = 0; i < 5; i++) setTimeout(() => fetch("/again?" + i).then((r) => results.push(r.status), () => results.push("failed")), 100 * i)</script>' : 'x')
  })
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { site.closeAllConnections(); site.close() })
  const port = (site.address() as AddressInfo).port
  const c = await canary(t, '127.0.0.2', port)
  let lookups = 0
  const rebinding: Resolver = async (host) => {
    if (host !== 'rebind.test') throw new Error(`ENOTFOUND ${host}`)
    return ++lookups === 1 ? ['127.0.0.1'] : ['127.0.0.2']
  }
  const policy = createUrlPolicy({ mode: 'default', resolve: rebinding, cacheMs: 0, deny: parseAddressList('FOUNDRY_URL_DENY', '127.0.0.2') })
  const refusals: EgressRefusal[] = []
  const gate = await createEgressGate({ decide: policy.resolveChecked, log: quiet })
  t.teardown(async () => { await gate.close() })
  gate.onRefused((r) => { refusals.push(r) })
  const browser = await gatedBrowser(t, gate.browserProxy)
  const session = await gate.open('rebinding')
  const context = await browser.createBrowserContext({ proxyServer: session.proxyServer, proxyBypassList: EGRESS_BYPASS })
  t.teardown(async () => { await context.close().catch(() => {}) })
  const page = await context.newPage()
  // Keep-alive would carry every request on the first connection: no new
  // lookup at all. Make each request a connection of its own.
  await page.setExtraHTTPHeaders({ connection: 'close' })
  const first = await page.goto(`http://rebind.test:${port}/`)
  t.equal(first?.status(), 200, 'the first resolution (127.0.0.1) is allowed and connected to')
  await eventually(async () => (await page.evaluate(() => (window as unknown as { results: unknown[] }).results.length)) === 5, 10_000)
  t.ok(lookups >= 2, `the name was resolved again (${lookups} lookups)`)
  t.same(c.hits, [], 'nothing ever reached the denied address')
  t.ok(refusals.length >= 1 && refusals.every((r) => r.label === 'rebinding' && r.reason === 'deny-list'), 'the later resolutions were refused, named by session')
  t.same(siteHits.slice(0, 1), ['/'])
})

t.test('a public-only instance with FOUNDRY_URL_ALLOW logs into a private Foundry through the gate, module included', async (t) => {
  const { standin } = await foundry(t)
  const { app, logs } = await build(t, { FOUNDRY_URL_POLICY: 'public-only', FOUNDRY_URL_ALLOW: '127.0.0.1' })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, 'login and the module\'s relay connection, on an allowed private address')
  t.match(res.json(), { clientId: /./ })
  const refused = await app.inject({
    method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': standin.url.replace('127.0.0.1', '127.0.0.2'), 'x-username': GM.name }
  })
  expectError(t, refused, 400, 'INVALID_FOUNDRY_URL')
  t.match(refused.json().error, /public-only/, 'another loopback address stays refused')
  t.notMatch(logs(), GM.password, 'no password in the logs')
})

t.test('a Foundry URL that redirects to an address the gate refuses fails as FOUNDRY_URL_REFUSED', async (t) => {
  const c = await canary(t)
  const hits: string[] = []
  const site = http.createServer((req, res) => {
    hits.push(req.url ?? '')
    res.writeHead(302, { location: `${c.url}/latest/meta-data/` })
    res.end()
  })
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { site.closeAllConnections(); site.close() })
  const { app } = await build(t, { FOUNDRY_URL_DENY: '127.0.0.2' })
  const res = await startSession(app, { foundryUrl: `http://127.0.0.1:${(site.address() as AddressInfo).port}/`, username: GM.name, password: GM.password })
  expectError(t, res, 403, 'FOUNDRY_URL_REFUSED')
  t.match(res.json(), { stage: 'reach', error: /refuses/ })
  t.same(hits, ['/'], 'the allowed first hop was asked once')
  t.same(c.hits, [], 'the redirect target saw nothing')
  const list = await listSessions(app)
  t.same([list.activeSessions.length, list.pendingSessions.length], [0, 0], 'no session')
  t.ok(await eventually(() => app.browserPool.health().contexts === 0), 'no browser context left')
})

t.test('the gate closes with the service: its ports refuse connections after close()', async (t) => {
  const { app } = await build(t)
  const { standin } = await foundry(t)
  const closed: string[] = []
  app.egress.onClosed((label) => { closed.push(label) })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200)
  const sessionId = (res.json() as { sessionId: string }).sessionId
  const browserPort = Number(new URL(app.egress.browserProxy).port)
  await app.close()
  const refused = await new Promise<string>((resolve) => {
    const s = netConnect(browserPort, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve('connected') })
    s.once('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? 'error') })
  })
  t.equal(refused, 'ECONNREFUSED', 'the browser-wide proxy port is closed')
  t.same(closed.sort(), ['browser', sessionId].sort(), 'the session\'s port and the browser\'s were closed')
})
