// Reading the module's relay connection from the page's WebSockets, without
// Chromium: the close codes as the module reads them (foundry.md §6).
import t from 'tap'
import { moduleConnections, moduleView, relayProbeUrl } from '../../lib/session/module-watch.ts'
import type { WsConnection } from '../../lib/browser/websockets.ts'

const RELAY = { relayUrl: 'ws://relay.test:3010/', clientId: 'foundry-abc' }
let n = 0
function ws (url: string, over: Partial<WsConnection> = {}): WsConnection {
  return { requestId: String(++n), url: new URL(url), authSucceeded: false, closed: false, openedAt: 1000 + n, ...over }
}
const mod = (over: Partial<WsConnection> = {}): WsConnection => ws('ws://relay.test:3010/?id=foundry-abc&worldId=w&token=secret', over)

t.test('only the module\'s sockets count: relay URL and client id', async (t) => {
  const foundrySocket = ws('ws://foundry.test:30000/socket.io/?session=x&EIO=4&transport=websocket', { status: 101 })
  const otherId = ws('ws://relay.test:3010/?id=foundry-other&worldId=w', { status: 101 })
  const mine = mod({ status: 101 })
  t.same(moduleConnections([foundrySocket, otherId, mine], RELAY), [mine])
  t.same(moduleConnections([foundrySocket, otherId, mine], { relayUrl: '', clientId: null }), [otherId, mine], 'unknown: any socket with the module\'s id and worldId')
  t.equal(moduleView([foundrySocket], RELAY), null, 'none: nothing to say')
})

t.test('connected, connecting, and each close by its code', async (t) => {
  t.match(moduleView([mod({ status: 101 })], RELAY), { connected: true, reason: 'connected to its relay' })
  const v3 = ws('wss://relay.test/relay?id=foundry-abc&worldId=w', { status: 101 })
  const v3Relay = { relayUrl: 'wss://relay.test/relay', clientId: 'foundry-abc' }
  t.match(moduleView([v3], v3Relay), { connected: false, reason: /^connecting/ }, 'module 3.x: connected only after auth-success')
  t.match(moduleView([{ ...v3, authSucceeded: true }], v3Relay), { connected: true })
  const cases: Array<[Partial<WsConnection>, RegExp, boolean]> = [
    [{ status: 101, closed: true, closeCode: 4004 }, /another browser \(close 4004: replaced\)/, false],
    [{ status: 101, closed: true, closeCode: 1000 }, /close 1000.*does not reconnect by itself/, false],
    [{ status: 101, closed: true, closeCode: 1008 }, /token \(close 1008\)/, false],
    [{ status: 101, closed: true, closeCode: 4002 }, /close 4002/, false],
    [{ closed: true, closeCode: 1006 }, /unreachable \(close 1006\)/, true],
    [{ closed: true }, /unreachable \(close 1006\)/, true],
    [{ status: 101, closed: true, closeCode: 1011 }, /close 1011/, true]
  ]
  for (const [over, reason, revivable] of cases) {
    t.match(moduleView([mod({ ...over, closedAt: 5000 })], RELAY), { connected: false, reason, revivable, lastSeenAt: 5000 }, String(over.closeCode))
  }
  t.match(moduleView([mod({ status: 101, closed: true, closeCode: 4004 }), mod()], RELAY),
    { connected: false, revivable: false, reason: /^connecting to its relay, after: .*close 4004/ }, 'a retry in progress says what it follows')
  t.notMatch(JSON.stringify(moduleView([mod({ status: 101 })], RELAY)), /secret/, 'the query (a token) never reaches the view')
})

t.test('the relay probe address: http(s) for ws(s), none otherwise', async (t) => {
  t.equal(relayProbeUrl([], RELAY)?.href, 'http://relay.test:3010/')
  t.equal(relayProbeUrl([], { relayUrl: 'wss://relay.test/relay', clientId: null })?.href, 'https://relay.test/relay')
  t.equal(relayProbeUrl([mod()], { relayUrl: '', clientId: 'foundry-abc' })?.href, 'http://relay.test:3010/', 'from the socket when the login did not say')
  t.equal(relayProbeUrl([], { relayUrl: '', clientId: null }), null)
})
