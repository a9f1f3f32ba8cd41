// The HTTP probe that decides, without a browser, whether a session waiting
// to log back in should try: real HTTP servers on loopback answering as a
// Foundry, a proxy without Foundry, a closed port and a host that never
// answers would; and the address it connects to is the one the URL policy
// checked (an injected resolver that changes its answer).
import t from 'tap'
import http from 'node:http'
import tls from 'node:tls'
import type { AddressInfo, Socket } from 'node:net'
import { probeFoundry, type ProbeParams } from '../../lib/foundry/probe.ts'
import { createUrlPolicy, parseAddressList, type Resolver } from '../../lib/access/url-policy.ts'

async function server (t: { teardown: (fn: () => unknown) => void }, handler: http.RequestListener): Promise<string> {
  const conns = new Set<Socket>()
  const srv = http.createServer(handler)
  srv.on('connection', (c) => { conns.add(c) })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const c of conns) c.destroy()
    await new Promise((resolve) => srv.close(resolve))
  })
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/foundry/`
}

const json = (body: unknown): http.RequestListener => (req, res) => {
  if (req.url !== '/foundry/api/status') { res.writeHead(404).end(); return }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

const params = (foundryUrl: string, more: Partial<ProbeParams> = {}): ProbeParams => ({ foundryUrl, relaunchWorld: false, worldId: 'lost-mine', timeoutMs: 1500, ...more })

t.test('what the probe says, case by case', async (t) => {
  const closedPort = await (async () => {
    const srv = http.createServer()
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
    const port = (srv.address() as AddressInfo).port
    await new Promise((resolve) => srv.close(resolve))
    return `http://127.0.0.1:${port}/`
  })()
  const cases: Array<[string, string, Partial<ProbeParams>, { verdict: 'try' } | { verdict: 'wait', code: string, message: RegExp }]> = [
    ['Foundry stopped: connection refused', closedPort, {}, { verdict: 'wait', code: 'FOUNDRY_UNREACHABLE', message: /could not be reached: the connection failed \(ECONNREFUSED\)/ }],
    ['a host name that does not resolve', 'http://foundry.invalid/', {}, { verdict: 'wait', code: 'FOUNDRY_UNREACHABLE', message: /does not resolve/ }],
    ['a proxy answering 502', await server(t, (_req, res) => { res.writeHead(502).end('Bad Gateway') }), {}, { verdict: 'wait', code: 'FOUNDRY_ERROR', message: /HTTP 502 on \/foundry\/api\/status/ }],
    ['a host that accepts and never answers', await server(t, () => {}), {}, { verdict: 'wait', code: 'FOUNDRY_TIMEOUT', message: /did not answer within 2 s/ }],
    ['the world running', await server(t, json({ active: true, version: '13.351', world: 'lost-mine' })), {}, { verdict: 'try' }],
    ['no world, relaunching not allowed', await server(t, json({ active: false, version: '13.351' })), {}, { verdict: 'wait', code: 'WORLD_NOT_RUNNING', message: /waiting for a Gamemaster to launch it.*relaunchWorld/ }],
    ['no world, relaunching allowed: the browser launches it', await server(t, json({ active: false, version: '13.351' })), { relaunchWorld: true }, { verdict: 'try' }],
    ['another world running', await server(t, json({ active: true, version: '13.351', world: 'curse-of-strahd' })), {}, { verdict: 'wait', code: 'WORLD_MISMATCH', message: /curse-of-strahd/ }],
    ['another world, but the session\'s is not known yet', await server(t, json({ active: true, version: '13.351', world: 'curse-of-strahd' })), { worldId: null }, { verdict: 'try' }],
    ['a redirect (to /license): the browser judges', await server(t, (_req, res) => { res.writeHead(302, { location: '/foundry/license' }).end() }), {}, { verdict: 'try' }],
    ['not JSON (a page that is not Foundry): the browser judges', await server(t, (_req, res) => { res.writeHead(200).end('<html>hello</html>') }), {}, { verdict: 'try' }],
    ['refused by the URL policy: the browser reports it', closedPort, { checkUrl: async () => ({ ok: false, reason: 'deny-list' }) }, { verdict: 'try' }],
    ['a name the URL policy cannot resolve: waits', 'http://foundry.test/', { checkUrl: async () => ({ ok: false, reason: 'unresolvable' }) }, { verdict: 'wait', code: 'FOUNDRY_UNREACHABLE', message: /does not resolve/ }]
  ]
  for (const [name, url, more, want] of cases) {
    const got = await probeFoundry(params(url, more))
    t.match(got, want, name)
    if (want.verdict === 'try') t.equal(got.verdict, 'try', name)
  }
})

t.test('DNS rebinding: the probe connects to the address the policy checked, never to a later answer', async (t) => {
  // Foundry on 127.0.0.1 and a canary on 127.0.0.2 (denied), same port.
  const seen: Array<{ host: string | undefined, address: string | undefined }> = []
  const site = http.createServer((req, res) => {
    seen.push({ host: req.headers.host, address: req.socket.localAddress })
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ active: true, version: '13.351', world: 'lost-mine' }))
  })
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { site.closeAllConnections(); site.close() })
  const port = (site.address() as AddressInfo).port
  const canaryHits: string[] = []
  const canary = http.createServer((_req, res) => { canaryHits.push('request'); res.end() })
  canary.on('connection', () => { canaryHits.push('tcp') })
  await new Promise<void>((resolve) => canary.listen(port, '127.0.0.2', resolve))
  t.teardown(() => { canary.closeAllConnections(); canary.close() })

  let lookups = 0
  const rebinding: Resolver = async (host) => {
    if (host !== 'rebind.test') throw new Error(`ENOTFOUND ${host}`)
    return ++lookups === 1 ? ['127.0.0.1'] : ['127.0.0.2']
  }
  const policy = createUrlPolicy({ mode: 'default', resolve: rebinding, cacheMs: 0, deny: parseAddressList('FOUNDRY_URL_DENY', '127.0.0.2') })
  const url = `http://rebind.test:${port}/foundry/`

  t.same(await probeFoundry(params(url, { checkUrl: policy.checkUrl })), { verdict: 'try' }, 'the world runs: try')
  t.equal(lookups, 1, 'one resolution: the policy\'s')
  t.same(seen, [{ host: `rebind.test:${port}`, address: '127.0.0.1' }], 'connected to the checked address, with the name as Host')

  // The name now answers with the denied address: the probe leaves it to the browser (and its gate).
  t.same(await probeFoundry(params(url, { checkUrl: policy.checkUrl })), { verdict: 'try' }, 'refused: the browser reports it')
  t.equal(lookups, 2, 'again one resolution')
  t.equal(seen.length, 1, 'the allowed address was not asked again')
  t.same(canaryHits, [], 'the denied address saw no connection')
})

t.test('https: the pinned probe keeps the host name as the TLS server name (SNI)', async (t) => {
  const names: string[] = []
  // No certificate: the handshake fails after the ClientHello (a TLS error: the browser judges).
  const server = tls.createServer({ SNICallback: (name, cb) => { names.push(name); cb(null, undefined) } })
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const port = (server.address() as AddressInfo).port
  const policy = createUrlPolicy({ mode: 'default', resolve: async () => ['127.0.0.1'], cacheMs: 0 })
  const got = await probeFoundry(params(`https://foundry.test:${port}/`, { checkUrl: policy.checkUrl }))
  t.same(got, { verdict: 'try' }, 'a TLS failure is the browser\'s to judge')
  t.same(names, ['foundry.test'], 'the server was asked for foundry.test, at the checked address')
})
