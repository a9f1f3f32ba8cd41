// The HTTP probe that decides, without a browser, whether a session waiting
// to log back in should try: real HTTP servers on loopback answering as a
// Foundry, a proxy without Foundry, a closed port and a host that never
// answers would.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { probeFoundry, type ProbeParams } from '../../lib/foundry/probe.js'

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
    ['refused by the URL policy: the browser reports it', closedPort, { allowRequest: () => false }, { verdict: 'try' }]
  ]
  for (const [name, url, more, want] of cases) {
    const got = await probeFoundry(params(url, more))
    t.match(got, want, name)
    if (want.verdict === 'try') t.equal(got.verdict, 'try', name)
  }
})
