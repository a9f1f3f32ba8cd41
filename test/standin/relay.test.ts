// The relay stand-in's module-facing protocol, driven with a plain ws client.
import t from 'tap'
import WebSocket from 'ws'
import { startRelayStandin } from '../../support/foundry/relay.ts'

interface Opened { ws: WebSocket, messages: unknown[], closed: Promise<{ code: number, reason: string }> }

function open (url: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const messages: unknown[] = []
    const closed = new Promise<{ code: number, reason: string }>((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))
    })
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())))
    ws.on('open', () => resolve({ ws, messages, closed }))
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })))
    ws.on('error', reject)
  })
}

const until = async (fn: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) throw new Error('timeout')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('v2: query auth, pings, 1008, duplicate 4004, rejectIds', async (t) => {
  const relay = await startRelayStandin({ rejectIds: ['foundry-rejected0000001'] })
  t.teardown(() => relay.close())
  t.match(relay.url, /^ws:\/\/127\.0\.0\.1:\d+\/$/)

  const a = await open(relay.url + '?id=foundry-aaaaaaaaaaaaaaa1&token=k&worldId=w')
  const conn = await relay.waitFor((c) => c.id === 'foundry-aaaaaaaaaaaaaaa1')
  t.equal(conn.protocol, 'v2')
  t.equal(conn.authed, true)
  t.same(conn.query, { id: 'foundry-aaaaaaaaaaaaaaa1', token: 'k', worldId: 'w' })
  a.ws.send(JSON.stringify({ type: 'ping' }))
  await until(() => a.messages.length > 0)
  t.same(a.messages, [{ type: 'pong' }])
  t.equal(conn.pings, 1)

  const dup = await open(relay.url + 'anything?id=foundry-aaaaaaaaaaaaaaa1&token=k')
  t.equal((await dup.closed).code, 4004, 'duplicate id: the newcomer gets 4004')
  t.equal(conn.closedAt, undefined, 'the first connection stays')

  const noToken = await open(relay.url + '?id=foundry-x')
  t.equal((await noToken.closed).code, 1008)
  const noId = await open(relay.url + '?token=k')
  t.equal((await noId.closed).code, 1008)
  const rejected = await open(relay.url + '?id=foundry-rejected0000001&token=k')
  t.equal((await rejected.closed).code, 4004)
  await t.rejects(open(relay.url + 'ws/api?id=x&token=k'), /HTTP 404/, '/ws/api is not a module endpoint')

  a.ws.close(1000)
  await relay.waitFor((c) => c === conn && c.closeCode === 1000)
  t.equal(conn.closedBy, 'client')
  await t.rejects(relay.waitFor((c) => c.id === 'never', 100), /no matching connection/)
})

t.test('v3: auth message, token rules, timeout, replacement', async (t) => {
  const relay = await startRelayStandin({ authTimeoutMs: 300 })
  t.teardown(() => relay.close())
  relay.validTokens.add('good-token')
  const base = relay.url + 'relay?id=fvtt_0123456789abcdef&worldId=w'

  await t.rejects(open(base + '&token=good-token'), /HTTP 400/, '?token= → HTTP 400')
  t.equal(relay.rejectedUpgrades[0]?.status, 400)

  const a = await open(base)
  const conn = await relay.waitFor((c) => c.protocol === 'v3' && c.closedAt === undefined)
  t.equal(conn.authed, false)
  a.ws.send(JSON.stringify({ type: 'auth', token: 'good-token' }))
  await until(() => a.messages.length > 0)
  t.same(a.messages[0], { type: 'auth-success' })
  t.equal(conn.authed, true)
  a.ws.send(JSON.stringify({ type: 'ping' }))
  await relay.waitFor((c) => c === conn && c.pings === 1)

  const bad = await open(base)
  bad.ws.send(JSON.stringify({ type: 'auth', token: 'wrong' }))
  t.equal((await bad.closed).code, 1008, 'unknown token → 1008')

  const silent = await open(base)
  t.equal((await silent.closed).code, 4002, 'no auth message in time → 4002')
  const chatty = await open(base)
  chatty.ws.send(JSON.stringify({ type: 'ping' }))
  t.equal((await chatty.closed).code, 4002, 'first message not auth → 4002')
  const noId = await open(relay.url + 'relay')
  t.equal((await noId.closed).code, 4001, 'no client id → 4001')

  const b = await open(base)
  b.ws.send(JSON.stringify({ type: 'auth', token: 'good-token' }))
  t.equal((await a.closed).code, 1000, 'same id again replaces the older connection')
  await until(() => b.messages.length > 0)
  t.same(b.messages[0], { type: 'auth-success' })

  relay.kick(relay.open()[0]!, 4004, 'elsewhere')
  t.equal((await b.closed).code, 4004, 'kick sends the code')
})
