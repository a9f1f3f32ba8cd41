// The service's own listening ports through the egress gate: a session's page
// (a world's module script) must not call the service's API or read its
// metrics from inside the GM's browser. Only those ports are refused: the
// Foundry stand-ins run on loopback under the default policy, and a session
// whose Foundry URL is that very host:port is let through.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createEgressGate } from '../../lib/browser/egress.ts'
import { createUrlPolicy } from '../../lib/access/url-policy.ts'
import type { SessionEvent } from '../../lib/session/types.ts'
import { GM, eventually, foundry, startSession } from '../e2e/fixtures.ts'
import { build } from '../helper.ts'
import { listeningPorts, processTree } from '../../support/proc.ts'

type Tap = { teardown: (fn: () => unknown) => void }

const quiet = { info () {}, warn () {}, debug () {} }

/** A plain HTTP server on host (port 0: any), counting the connections it accepts. */
async function listener (t: Tap, host: string, port = 0): Promise<{ port: number, connections: () => number }> {
  let n = 0
  const server = http.createServer((_req, res) => { res.end('neighbour') })
  server.on('connection', () => { n++ })
  await new Promise<void>((resolve) => server.listen(port, host, resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { port: (server.address() as AddressInfo).port, connections: () => n }
}

/** A free TCP port on 127.0.0.1 (for METRICS_PORT, which takes a number). */
async function freePort (): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as AddressInfo
  await new Promise((resolve) => s.close(resolve))
  return port
}

/** A plain-HTTP GET through a gate port, as Chromium sends it: the status the gate (or the site) answers. */
async function viaGate (proxyServer: string, url: string): Promise<number> {
  const proxy = new URL(proxyServer)
  return await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, method: 'GET', path: url, headers: { host: new URL(url).host }, agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A CONNECT through a gate port (https, wss): the gate's status. */
async function connectViaGate (proxyServer: string, target: string): Promise<number> {
  const proxy = new URL(proxyServer)
  return await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: target, agent: false })
    req.on('connect', (res, socket) => { socket.destroy(); resolve(res.statusCode ?? 0) })
    req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  })
}

t.test('which addresses count as the service\'s: its port on this machine only, wildcard or not', async (t) => {
  const names: Record<string, string> = { 'me.test': '10.1.2.3', localhost: '127.0.0.1', 'other.test': '10.9.9.9' }
  const policy = createUrlPolicy({ mode: 'default', resolve: async (host) => [names[host] ?? '192.0.2.1'], cacheMs: 0 })
  const gate = await createEgressGate({ decide: policy.resolveChecked, log: quiet, localAddresses: () => ['127.0.0.1', '10.1.2.3', 'fe80::1%eth0'] })
  t.teardown(async () => { await gate.close() })
  gate.refuseService('0.0.0.0', 4000) // listening on every address
  gate.refuseService('127.0.0.1', 4001) // on one address
  const s = await gate.open('page')
  const reason = async (host: string, port: number): Promise<string> => {
    const p = await s.pin(host, port)
    return p.ok ? 'ok' : p.reason
  }
  t.equal(await reason('127.0.0.1', 4000), 'service-port', 'loopback, wildcard listener')
  t.equal(await reason('127.0.0.2', 4000), 'service-port', 'any loopback address, wildcard listener')
  t.equal(await reason('::1', 4000), 'service-port', 'IPv6 loopback, wildcard listener')
  t.equal(await reason('::ffff:127.0.0.1', 4000), 'service-port', 'IPv4-mapped loopback')
  t.equal(await reason('0.0.0.0', 4000), 'service-port', '0.0.0.0 is this machine')
  t.equal(await reason('me.test', 4000), 'service-port', 'a name for one of this machine\'s interface addresses')
  t.equal(await reason('fe80::1', 4000), 'policy-link-local', 'link-local stays the policy\'s')
  t.equal(await reason('other.test', 4000), 'ok', 'another machine on the same port')
  t.equal(await reason('127.0.0.1', 4002), 'ok', 'another port on loopback')
  t.equal(await reason('127.0.0.1', 4001), 'service-port', 'the one address listened on')
  t.equal(await reason('127.0.0.2', 4001), 'ok', 'another loopback address than the one listened on')
  t.equal(await reason('0.0.0.0', 4001), 'service-port', '0.0.0.0 reaches 127.0.0.1')

  const foundry = await gate.open('foundry-here', { foundryUrl: 'http://127.0.0.1:4001/' })
  t.ok((await foundry.pin('127.0.0.1', 4001)).ok, 'a session whose Foundry URL is that host:port reaches it')
  t.match(await foundry.pin('localhost', 4001), { ok: false }, 'by that name only')
  t.match(await foundry.pin('127.0.0.1', 4000), { ok: false, reason: 'service-port' }, 'and not the service\'s other ports')
})

t.test('the running service: its API port and METRICS_PORT are refused through every session\'s gate port', async (t) => {
  const metricsPort = await freePort()
  const { app } = await build(t, { METRICS_PORT: metricsPort })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  let connections = 0
  app.server.on('connection', () => { connections++ })
  const neighbour = await listener(t, '127.0.0.1')
  const refused: string[] = []
  app.egress.onRefused((r) => { refused.push(`${r.target} ${r.reason}`) })

  const s = await app.egress.open('page')
  t.teardown(() => s.close())
  t.equal(await viaGate(s.proxyServer, `http://127.0.0.1:${port}/health`), 403, 'GET /health through the gate: refused')
  t.equal(await viaGate(s.proxyServer, `http://localhost:${port}/health`), 403, 'by name too')
  t.equal(await connectViaGate(s.proxyServer, `127.0.0.1:${port}`), 403, 'CONNECT (https, wss): refused')
  t.equal(await viaGate(s.proxyServer, `http://127.0.0.1:${metricsPort}/metrics`), 403, 'METRICS_PORT: refused')
  t.equal(connections, 0, 'the service\'s port saw no connection')
  t.same(refused, [
    `127.0.0.1:${port} service-port`, `localhost:${port} service-port`, `127.0.0.1:${port} service-port`, `127.0.0.1:${metricsPort} service-port`
  ], 'each refusal named, with its reason')
  t.equal(await viaGate(s.proxyServer, `http://127.0.0.1:${neighbour.port}/`), 200, 'another port on loopback is reached')
  t.equal(neighbour.connections(), 1)

  // The exception: a session whose Foundry is the service's own address.
  const own = await app.egress.open('own', { foundryUrl: `http://127.0.0.1:${port}/` })
  t.teardown(() => own.close())
  t.equal(await viaGate(own.proxyServer, `http://127.0.0.1:${port}/health`), 200, 'the session\'s own Foundry URL is let through')
  t.equal(connections, 1)

  // Nor is there a DevTools port to reach: Chromium is driven over a pipe
  // and listens on no port at all (a page could otherwise try loopback
  // ports until it found the browser's control channel).
  const chromium = app.browserPool.pid()
  t.ok(chromium !== null, 'Chromium runs')
  const tree = processTree(chromium!)
  t.ok(tree.length > 1, `its process tree (${tree.length} processes)`)
  t.same(listeningPorts(tree), [], 'Chromium listens on no TCP port')
  t.ok(listeningPorts([process.pid]).includes(port), 'while the check sees this process\'s own listening port')
})

/** A session on a stand-in whose /game page runs the egress probe toward `target` (every way a page has). */
async function probedSession (t: Tap & { after: (fn: () => unknown) => void }, target: (servicePort: number) => string) {
  const { app } = await build(t, { PAGE_BLOCK_RESOURCES: 'none' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  let connections = 0
  app.server.on('connection', () => { connections++ })
  const { standin } = await foundry(t, { egressProbe: { canary: target(port), udpPort: 9 } })
  const events: SessionEvent[] = []
  app.sessions.onEvent((e) => { events.push(e) })
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  let done = false
  await eventually(() => (done = standin.requests.some((r) => r.path === '/egress-probe/done')), 30_000)
  return { port, res, done, events, connections: () => connections }
}

t.test('a Foundry page trying every way to reach the service\'s own port (fetch, XHR, WebSocket, EventSource, beacon, iframe, service worker …) is refused; the login works', async (t) => {
  const { port, res, done, events, connections } = await probedSession(t, (p) => `http://127.0.0.1:${p}`)
  t.equal(res.statusCode, 200, 'login and module connection through the gate, Foundry on loopback')
  t.ok(done, 'the probe ran every way and reported')
  // Late stragglers (beacons, retries) get a moment more.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(connections(), 0, 'the service\'s port saw no connection from the page')
  t.match(events.find((e) => e.type === 'egress'), { type: 'egress', target: `127.0.0.1:${port}`, reason: 'service-port' }, 'reported in the session\'s events')
})

t.test('control: the same page reaches another port on loopback (the test above can fail)', async (t) => {
  const neighbour = await listener(t, '127.0.0.1')
  const { res, done, connections } = await probedSession(t, () => `http://127.0.0.1:${neighbour.port}`)
  t.equal(res.statusCode, 200)
  t.ok(done)
  t.ok(await eventually(() => neighbour.connections() > 0), `the neighbour on loopback was reached (${neighbour.connections()} connections)`)
  t.equal(connections(), 0, 'and the service\'s port still saw nothing')
})
