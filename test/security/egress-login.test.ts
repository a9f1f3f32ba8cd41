// Which refusals of the egress gate decide a login's error (lib/foundry/login.ts,
// Driver.refusedNavigation): only the main frame's navigation, Foundry's URL
// or a redirect it follows. An address the URL policy refuses there is
// FOUNDRY_URL_REFUSED (permanent); a name that does not resolve there is
// FOUNDRY_UNREACHABLE (waited for); what a page's scripts and sub-resources
// are refused is reported (egress event, metrics) and never the login's
// error. Real Chromium against the Foundry stand-in; names resolved by an
// injected resolver, each connection anew (resolveCacheMs 0); loopback only:
// 127.0.0.2 plays the denied address (FOUNDRY_URL_DENY).
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createEgressGate, egressTarget, type EgressSession } from '../../lib/browser/egress.ts'
import { createUrlPolicy, parseAddressList, type Resolver } from '../../lib/access/url-policy.ts'
import type { SessionEvent } from '../../lib/session/types.ts'
import type { StandinRequest } from '../../support/foundry/standin.ts'
import { GM, eventually, foundry, listSessions, startSession } from '../e2e/fixtures.ts'
import { API_KEY, build, encryptNode, expectError } from '../helper.ts'

type Tap = { teardown: (fn: () => unknown) => void }

/** Backoff capped at 2 s, navigations bounded at 4 s: configuration, no mocked clock. */
const FAST = { RELOGIN_BASE_MS: 200, RELOGIN_MAX_DELAY_MS: 2000, NAVIGATION_TIMEOUT_MS: 4000 }

type Listed = Record<string, any>

async function sessionOf (app: Parameters<typeof listSessions>[0], id: string): Promise<Listed | undefined> {
  const list = await listSessions(app)
  return [...list.activeSessions, ...list.endedSessions].find((s) => s.id === id)
}

interface Site { port: number, url: string, hits: string[], close: () => Promise<void> }

/** An HTTP server on host (port 0: any), every request recorded; closed after the test (or by close()). */
async function site (t: Tap, host: string, handler: http.RequestListener, port = 0): Promise<Site> {
  const hits: string[] = []
  const s = http.createServer((req, res) => { hits.push(req.url ?? ''); handler(req, res) })
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, host, resolve) })
  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => { s.close(() => { resolve() }); s.closeAllConnections() })
    await closed
  }
  t.teardown(close)
  const p = (s.address() as AddressInfo).port
  return { port: p, url: `http://${host}:${p}`, hits, close }
}

const quiet = { info () {}, warn () {}, debug () {} }

/** A plain-HTTP GET through a session's gate port, as Chromium sends it: the status (the gate's 403 when refused). */
async function viaGate (session: EgressSession, url: string): Promise<number> {
  const proxy = new URL(session.proxyServer)
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, path: url, headers: { host: new URL(url).host }, agent: false }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.end()
  })
}

const ENOTFOUND = (host: string): Error => Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })

t.test('the gate\'s refusal(host:port): why the last connection there was refused, per session, until one passes', async (t) => {
  const target = await site(t, '127.0.0.1', (_req, res) => { res.end('ok') })
  let answer = ['127.0.0.2']
  const policy = createUrlPolicy({
    mode: 'default',
    resolve: async (host) => { if (host !== 'flip.test') throw ENOTFOUND(host); return answer },
    cacheMs: 0,
    deny: parseAddressList('FOUNDRY_URL_DENY', '127.0.0.2')
  })
  const gate = await createEgressGate({ decide: policy.resolveChecked, log: quiet })
  t.teardown(async () => { await gate.close() })
  const one = await gate.open('one')
  const two = await gate.open('two')
  const flip = `flip.test:${target.port}`
  t.equal(one.refusal(flip), undefined, 'nothing refused yet')
  t.equal(await viaGate(one, `http://flip.test:${target.port}/a?token=x`), 403, 'flip.test resolves to a denied address: refused')
  t.equal(one.refusal(flip), 'deny-list', 'and why, by host:port')
  t.equal(two.refusal(flip), undefined, 'another session\'s refusals are its own')
  t.equal(await viaGate(one, 'http://nowhere.test:8080/'), 403)
  t.equal(one.refusal('nowhere.test:8080'), 'unresolvable', 'a name that does not resolve')
  answer = ['127.0.0.1']
  t.equal(await viaGate(one, `http://flip.test:${target.port}/b`), 200, 'the name now resolves to an allowed address')
  t.equal(one.refusal(flip), undefined, 'a connection that passed clears the refusal')
  t.equal(one.refusal('nowhere.test:8080'), 'unresolvable', 'others stay')
  t.same(target.hits, ['/b'], 'the denied answer was never connected to')
  t.equal(one.stats().refused, 2, 'counted as before')
  // The names the login asks with.
  t.equal(egressTarget('HTTP://Flip.Test.:80/x?token=1'), 'flip.test:80')
  t.equal(egressTarget('https://[::1]/'), '::1:443')
  t.equal(egressTarget('wss://relay.test/ws'), 'relay.test:443')
  t.equal(egressTarget('about:blank'), undefined)
  t.equal(egressTarget('chrome-error://chromewebdata/'), undefined)
})

t.test('a Foundry URL that redirects to a refused https address (the tunnel refused, no answer at all) fails as FOUNDRY_URL_REFUSED', async (t) => {
  const denied = await site(t, '127.0.0.2', (_req, res) => { res.end('x') })
  const foundryish = await site(t, '127.0.0.1', (_req, res) => { res.writeHead(302, { location: `https://127.0.0.2:${denied.port}/latest/meta-data/` }).end() })
  const { app } = await build(t, { FOUNDRY_URL_DENY: '127.0.0.2' })
  const res = await startSession(app, { foundryUrl: `${foundryish.url}/`, username: GM.name, password: GM.password })
  expectError(t, res, 403, 'FOUNDRY_URL_REFUSED')
  t.match(res.json(), { stage: 'reach', error: new RegExp(`127\\.0\\.0\\.2:${denied.port}, an address this service refuses \\(deny-list`) })
  t.same(denied.hits, [], 'the redirect target saw nothing')
})

t.test('a page\'s sub-resource the gate refuses, then a transient failure: the session waits and comes back, never FOUNDRY_URL_REFUSED', async (t) => {
  // Foundry restarts behind its reverse proxy, which meanwhile sends
  // visitors to a status page on another origin; that page's analytics
  // script is on an address the operator denies. The script is blocking,
  // in <head>: the gate has refused it before the page's DOMContentLoaded,
  // so before the login judges the page (not Foundry: NOT_FOUNDRY, waited for).
  const denied = await site(t, '127.0.0.2', (_req, res) => { res.end('analytics') })
  const statusPage = await site(t, '127.0.0.1', (_req, res) => {
    res.setHeader('content-type', 'text/html')
    res.end(`<!doctype html><html><head><script src="${denied.url}/analytics.js"></script></head><body><h1>Foundry is restarting, back soon</h1></body></html>`)
  })
  const { app } = await build(t, { ...FAST, FOUNDRY_URL_DENY: '127.0.0.2' })
  const { standin, relay } = await foundry(t)
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, res.body)
  const { sessionId, clientId } = res.json()
  const events: SessionEvent[] = []
  app.sessions.onEvent((e) => { if (e.sessionId === sessionId) events.push(e) })

  await standin.down('refuse')
  const port = Number(new URL(standin.url).port)
  const proxy = await site(t, '127.0.0.1', (_req, res) => { res.writeHead(302, { location: `${statusPage.url}/` }).end() }, port)
  t.ok(await eventually(() => statusPage.hits.length >= 2 && events.some((e) => e.type === 'status' && e.reconnect !== undefined && e.reconnect.attempts >= 2), 30_000),
    'logins back in went to the status page, attempt after attempt')
  const s = await sessionOf(app, sessionId)
  t.match(s, { status: 'reconnecting', reconnect: { cause: 'NOT_FOUNDRY' } }, 'waiting: the status page is not Foundry')
  t.notOk(events.some((e) => e.type === 'status' && (e.status === 'failed' || e.reconnect?.cause === 'FOUNDRY_URL_REFUSED')), 'never FOUNDRY_URL_REFUSED, never failed')
  t.match(events.find((e) => e.type === 'egress'), { type: 'egress', target: `127.0.0.2:${denied.port}`, reason: 'deny-list' }, 'the analytics script\'s refusal is reported')

  await proxy.close()
  await standin.up()
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'active', 30_000), 'active again once Foundry is back')
  t.match(await sessionOf(app, sessionId), { clientId, relogins: 1 })
  t.ok(await eventually(() => relay.open().some((c) => c.id === clientId), 10_000), 'the module is connected again')
  t.same(denied.hits, [], 'the denied address saw nothing')
})

t.test('Foundry\'s host name does not resolve for a login back in (a DNS blip as its host reboots): FOUNDRY_UNREACHABLE, waited for, and back', async (t) => {
  const dns = { broken: false }
  const resolve: Resolver = async (host) => {
    if (host === 'foundry.test' && !dns.broken) return ['127.0.0.1']
    throw ENOTFOUND(host)
  }
  const { app } = await build(t, FAST, { resolve, resolveCacheMs: 0 })
  const { standin } = await foundry(t)
  const foundryUrl = standin.url.replace('127.0.0.1', 'foundry.test')
  const res = await startSession(app, { foundryUrl, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, res.body)
  const { sessionId, clientId } = res.json()

  // The name stops resolving while the first login back in runs: after the
  // HTTP probe (which resolved it and found Foundry), before the browser's
  // first connection. The probe is the first GET /api/status after the
  // restart (no page of the stand-in asks for it; only the login does).
  let armed = false
  const record = standin.requests.push.bind(standin.requests)
  standin.requests.push = (...items: StandinRequest[]) => {
    if (armed && items.some((r) => r.path.endsWith('/api/status'))) { armed = false; dns.broken = true }
    return record(...items)
  }
  // The first attempt's failure once the name broke; the name resolves again from then on.
  let failed: (SessionEvent & { type: 'status' }) | undefined
  app.sessions.onEvent((e) => {
    if (e.sessionId !== sessionId || e.type !== 'status') return
    if (dns.broken && failed === undefined && e.reconnect !== undefined && e.reconnect.attempts > 0) {
      failed = e
      dns.broken = false
    }
  })
  armed = true
  await standin.restart()
  t.ok(await eventually(() => failed !== undefined, 30_000), 'a login back in failed while the name did not resolve')
  t.match(failed, { status: 'reconnecting', reconnect: { cause: 'FOUNDRY_UNREACHABLE' }, reason: /does not resolve/ }, `waited for as FOUNDRY_UNREACHABLE: ${failed?.reason ?? ''}`)
  t.ok(await eventually(async () => (await sessionOf(app, sessionId))?.status === 'active', 30_000), 'active again once the name resolves')
  t.match(await sessionOf(app, sessionId), { clientId })
})

/** Handshake while `before` answers, start-session after `after()` changed the answer: the first login's own reply. */
async function startAcrossChange (app: Awaited<ReturnType<typeof build>>['app'], foundryUrl: string, after: () => void) {
  const hs = await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': foundryUrl, 'x-username': GM.name } })
  if (hs.statusCode !== 200) throw new Error(`handshake ${hs.statusCode}: ${hs.body}`)
  const { token, publicKey, nonce } = hs.json()
  after()
  return await app.inject({
    method: 'POST',
    url: '/start-session',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    payload: { handshakeToken: token, encryptedPassword: encryptNode(publicKey, { password: GM.password, nonce }) }
  })
}

t.test('a first login: Foundry\'s own name now resolving to a denied address is FOUNDRY_URL_REFUSED (403); not resolving at all is FOUNDRY_UNREACHABLE', async (t) => {
  const answers = new Map<string, string[]>([['foundry.test', ['127.0.0.1']]])
  const resolve: Resolver = async (host) => {
    const a = answers.get(host)
    if (a === undefined) throw ENOTFOUND(host)
    return a
  }
  const { app } = await build(t, { FOUNDRY_URL_DENY: '127.0.0.2' }, { resolve, resolveCacheMs: 0 })
  const { standin } = await foundry(t)
  const foundryUrl = standin.url.replace('127.0.0.1', 'foundry.test')

  const rebound = await startAcrossChange(app, foundryUrl, () => { answers.set('foundry.test', ['127.0.0.2']) })
  expectError(t, rebound, 403, 'FOUNDRY_URL_REFUSED')
  t.match(rebound.json(), { stage: 'reach', error: /foundry\.test:\d+, an address this service refuses \(deny-list/ })

  answers.set('foundry.test', ['127.0.0.1'])
  const unresolved = await startAcrossChange(app, foundryUrl, () => { answers.delete('foundry.test') })
  expectError(t, unresolved, 502, 'FOUNDRY_UNREACHABLE')
  t.match(unresolved.json(), { stage: 'reach', error: /Foundry at foundry\.test:\d+ could not be reached .*does not resolve/ })

  answers.set('foundry.test', ['127.0.0.1'])
  const ok = await startAcrossChange(app, foundryUrl, () => {})
  t.equal(ok.statusCode, 200, 'and the same URL logs in once the name resolves to an allowed address')
  t.equal(standin.joins.length, 1, 'Foundry saw the one login that reached it')
  const list = await listSessions(app)
  t.equal(list.activeSessions.length, 1)
})
