// A hosted instance deployed from fly.toml is safe by default: its
// environment is public-only with Fly's client address trusted, the
// handshake refuses Fly's private network, private ranges and loopback, and
// a public Foundry whose page redirects or links into them is cut off at
// the egress gate.
import t from 'tap'
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { parse } from 'smol-toml'
import { loadConfig } from '../../plugins/config.ts'
import { EGRESS_BYPASS, egressArgs, launchChromium, resolveChromium } from '../../lib/browser/chromium.ts'
import { createEgressGate } from '../../lib/browser/egress.ts'
import { createUrlPolicy, parseAddressList, type Resolver } from '../../lib/access/url-policy.ts'
import { API_KEY, build, expectError, NO_LOGIN } from '../helper.ts'
import { eventually } from '../e2e/fixtures.ts'

type Tap = { teardown: (fn: () => unknown) => void }

const fly = parse(readFileSync(new URL('../../fly.toml', import.meta.url), 'utf8')) as { env?: Record<string, string> }
const flyEnv = fly.env ?? {}

/**
 * Names as Fly's DNS would answer them: other apps' `.internal` names are on
 * its private IPv6 network; `foundry.example` plays a public Foundry.
 */
const flyDns: Resolver = async (host) => {
  if (host.endsWith('.internal')) return ['fdaa:0:1:a7b:1::3']
  if (host === 'foundry.example') return ['93.184.216.34']
  if (host === 'localhost') return ['127.0.0.1', '::1']
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
}

t.test('fly.toml deploys public-only, trusting Fly-Client-IP', async (t) => {
  t.equal(flyEnv.FOUNDRY_URL_POLICY, 'public-only')
  t.equal(flyEnv.TRUST_PROXY, 'fly')
  const config = loadConfig({ env: flyEnv, processEnv: false })
  t.equal(config.FOUNDRY_URL_POLICY, 'public-only', 'the service accepts fly.toml\'s environment')
  t.equal(config.TRUST_PROXY, 'fly')
})

t.test('the handshake of an instance run with fly.toml\'s environment refuses private addresses', async (t) => {
  const { app } = await build(t, { ...flyEnv, ...NO_LOGIN }, { resolve: flyDns })
  const hs = async (url: string) => await app.inject({
    method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': url, 'x-username': 'Gamemaster' }
  })
  for (const url of [
    'http://other-app.internal:30000/', 'https://my-foundry.flycast.internal/', 'http://[fdaa:0:1:a7b:1::3]:30000/', 'http://[fc00::1]/', 'http://[fd12:3456::1]/',
    'http://10.0.0.1/', 'http://10.255.255.254:30000/', 'http://172.16.0.1/', 'http://172.31.255.254/', 'http://192.168.0.1/', 'http://192.168.255.254/',
    'http://100.64.0.1/', 'http://100.127.255.254/', 'http://127.0.0.1:30000/', 'http://127.1.2.3/', 'http://[::1]:30000/', 'http://localhost:30000/',
    'http://[::ffff:10.0.0.1]/', 'http://[::ffff:127.0.0.1]/'
  ]) {
    const res = await hs(url)
    expectError(t, res, 400, 'INVALID_FOUNDRY_URL')
    t.match(res.json().error, /FOUNDRY_URL_POLICY=public-only/, `${url}: refused by the policy, not for another reason`)
  }
  t.equal((await hs('https://foundry.example/')).statusCode, 200, 'a public Foundry is accepted')
  t.equal(app.keystore.size(), 1, 'only that handshake was stored')
})

async function server (t: Tap, handler: http.RequestListener, host = '127.0.0.1'): Promise<{ port: number, hits: string[] }> {
  const hits: string[] = []
  const s = http.createServer((req, res) => { hits.push(`${req.headers.host ?? ''}${req.url ?? ''}`); handler(req, res) })
  await new Promise<void>((resolve) => s.listen(0, host, resolve))
  t.teardown(() => { s.closeAllConnections(); s.close() })
  return { port: (s.address() as { port: number }).port, hits }
}

t.test('in the browser: a public Foundry page cannot redirect or link into private ranges', async (t) => {
  // Tests reach loopback only. 127.0.0.3 plays the public internet: the
  // policy resolves `foundry.example` there (and every `*.internal` name as
  // Fly's DNS would, flyDns), and FOUNDRY_URL_ALLOW lets 127.0.0.3 through
  // as the public address it plays; every other address goes through
  // fly.toml's policy unchanged, at the egress gate.
  const internal = await server(t, (_req, res) => { res.end('internal secret') })
  const targets = [
    `http://other-app.internal:${internal.port}/secret`,
    `http://[fdaa:0:1:a7b:1::3]:${internal.port}/`,
    `http://10.1.2.3:${internal.port}/`,
    `http://172.16.0.5:${internal.port}/`,
    `http://192.168.1.10:${internal.port}/`,
    `http://100.64.0.7:${internal.port}/`,
    `http://127.0.0.1:${internal.port}/`,
    `http://localhost:${internal.port}/`,
    `https://127.0.0.1:${internal.port}/`
  ]
  const site = await server(t, (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    if (u.pathname === '/redirect') { res.writeHead(302, { location: u.searchParams.get('to') ?? '/' }); res.end(); return }
    res.setHeader('content-type', 'text/html')
    res.end(`<a id="link" href="${targets[0]}">internal</a>` + targets.map((u) => `<img src="${u}img">`).join(''))
  }, '127.0.0.3')
  const dns: Resolver = async (host) => host === 'foundry.example' ? ['127.0.0.3'] : await flyDns(host)
  const policy = createUrlPolicy({ mode: flyEnv.FOUNDRY_URL_POLICY as 'public-only', resolve: dns, allow: parseAddressList('FOUNDRY_URL_ALLOW', '127.0.0.3') })
  const gate = await createEgressGate({ decide: policy.resolveChecked, log: { info () {}, warn () {}, debug () {} } })
  t.teardown(async () => { await gate.close() })
  let refused = 0
  gate.onRefused(() => { refused++ })
  const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
  const browser = await launchChromium({ ...resolved, args: [...resolved.args, ...egressArgs(gate.browserProxy)] })
  t.teardown(async () => { await browser.close().catch(() => {}) })
  const session = await gate.open('hosted')
  const context = await browser.createBrowserContext({ proxyServer: session.proxyServer, proxyBypassList: EGRESS_BYPASS })
  const origin = `http://foundry.example:${site.port}`

  const page = await context.newPage()
  const home = await page.goto(`${origin}/`)
  t.equal(home?.status(), 200, 'the public Foundry page loads')

  for (const target of targets) {
    const before = refused
    const res = await page.goto(`${origin}/redirect?to=${encodeURIComponent(target)}`).catch((err: Error) => err)
    t.ok(res instanceof Error ? /ERR_TUNNEL_CONNECTION_FAILED/.test(res.message) : res?.status() === 403, `a redirect to ${target} is refused by the gate`)
    t.ok(refused > before, 'and counted')
  }

  const linking = await context.newPage()
  await linking.goto(`${origin}/`)
  const fetched = await linking.evaluate(async (urls: string[]) => await Promise.all(urls.map(async (u) => {
    try { const r = await fetch(u); return `status ${r.status}` } catch { return 'failed' }
  })), targets)
  t.ok(fetched.every((f) => f === 'failed' || f === 'status 403'), `page scripts cannot fetch them: ${fetched.join(', ')}`)
  const before = refused
  await linking.click('#link')
  t.ok(await eventually(() => refused > before, 20_000), 'following a link into Fly\'s private network is refused')

  t.same(internal.hits, [], 'nothing reached the internal server')
  t.ok(refused >= targets.length * 3, `the gate refused ${refused} connections`)
  t.ok(site.hits.length >= 3, 'the public site itself was reached')
})
