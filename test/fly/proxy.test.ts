// The fly-replay proxy stand-in does what Fly's docs say, so the fleet tests
// routed through it mean something.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { freePort } from './redis.ts'
import { parseReplay, startFlyProxy, type Machine } from './proxy.ts'

interface Seen { machine: string, method: string, path: string, body: string, src: string | undefined }

/** A machine answering with whatever `respond` says, recording what it got. */
async function machine (t: { teardown: (fn: () => unknown) => void }, id: string, seen: Seen[], respond: (s: Seen) => { status?: number, headers?: Record<string, string> } = () => ({})): Promise<Machine> {
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      const s: Seen = { machine: id, method: req.method ?? '', path: req.url ?? '', body, src: req.headers['fly-replay-src'] as string | undefined }
      seen.push(s)
      const r = respond(s)
      res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...r.headers }).end(JSON.stringify({ machine: id, body }))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return { id, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }
}

t.test('parses fly-replay fields, quoted lists included', async (t) => {
  t.same(parseReplay('instance=00bb33ff'), { instance: '00bb33ff' })
  t.same(parseReplay('region="sjc,any";app=other'), { region: 'sjc,any', app: 'other' })
  t.same(parseReplay('elsewhere=true'), { elsewhere: 'true' })
})

t.test('round robin over the machines, skipping one that refuses connections', async (t) => {
  const seen: Seen[] = []
  const a = await machine(t, 'a', seen)
  const b = await machine(t, 'b', seen)
  const dead = { id: 'dead', url: `http://127.0.0.1:${await freePort()}` }
  const proxy = await startFlyProxy([a, dead, b])
  t.teardown(proxy.close)
  const served: string[] = []
  for (let i = 0; i < 4; i++) served.push(((await (await fetch(`${proxy.url}/x`)).json()) as { machine: string }).machine)
  t.same(served, ['a', 'b', 'a', 'b'], 'alternates, never the dead machine')
  t.ok(seen.every((s) => s.src === undefined), 'no fly-replay-src on requests that were not replayed')
})

t.test('instance= replays the same request to that machine, with fly-replay-src', async (t) => {
  const seen: Seen[] = []
  const a = await machine(t, 'a', seen, () => ({ status: 409, headers: { 'fly-replay': 'instance=b' } }))
  const b = await machine(t, 'b', seen, () => ({ status: 201 }))
  const proxy = await startFlyProxy([a, b])
  t.teardown(proxy.close)
  const res = await fetch(`${proxy.url}/start?q=1`, { method: 'POST', body: '{"k":"v"}', headers: { 'content-type': 'application/json' } })
  t.equal(res.status, 201, 'the client gets the replay target\'s answer')
  t.equal(res.headers.get('fly-replay'), null, 'never the fly-replay response')
  t.same(await res.json(), { machine: 'b', body: '{"k":"v"}' })
  t.equal(seen.length, 2)
  t.match(seen[1], { machine: 'b', method: 'POST', path: '/start?q=1', body: '{"k":"v"}' }, 'method, path and body replayed')
  const src = parseReplay(seen[1]!.src ?? '')
  t.equal(src.instance, 'a', 'fly-replay-src names the machine that sent fly-replay')
  t.match(src.t, /^\d{16}$/, 'with a timestamp in microseconds')
})

t.test('elsewhere=true replays to another machine of the load balance', async (t) => {
  const seen: Seen[] = []
  const a = await machine(t, 'a', seen, (s) => s.src === undefined ? { headers: { 'fly-replay': 'elsewhere=true' } } : {})
  const b = await machine(t, 'b', seen, (s) => s.src === undefined ? { headers: { 'fly-replay': 'elsewhere=true' } } : {})
  const c = await machine(t, 'c', seen)
  const proxy = await startFlyProxy([a, b, c])
  t.teardown(proxy.close)
  const first = await (await fetch(`${proxy.url}/h`, { method: 'POST' })).json() as { machine: string }
  t.not(first.machine, 'a', 'not the machine that asked for elsewhere')
  t.equal(seen.length, 2, 'one replay, never a second one')
  t.ok(seen[1]!.src?.startsWith('instance=a;'), 'fly-replay-src names the sender')
})

t.test('instance= naming a machine that is gone is an error, not a retry elsewhere', async (t) => {
  const seen: Seen[] = []
  const a = await machine(t, 'a', seen, () => ({ headers: { 'fly-replay': 'instance=zz' } }))
  const proxy = await startFlyProxy([a])
  t.teardown(proxy.close)
  const res = await fetch(`${proxy.url}/x`)
  t.equal(res.status, 502)
  t.equal(seen.length, 1)
})

t.test('a request over 1 MB is not replayed', async (t) => {
  const seen: Seen[] = []
  const a = await machine(t, 'a', seen, () => ({ status: 409, headers: { 'fly-replay': 'instance=b' } }))
  const b = await machine(t, 'b', seen)
  const proxy = await startFlyProxy([a, b])
  t.teardown(proxy.close)
  const res = await fetch(`${proxy.url}/x`, { method: 'POST', body: Buffer.alloc(1024 * 1024 + 1, 120) })
  t.equal(res.status, 409, 'the first answer reaches the client')
  t.same(seen.map((s) => s.machine), ['a'])
})
